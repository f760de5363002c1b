import CNghttp2
import NIOCore

/// The tunnel-loop half of a stream that carries a socket's bytes: it turns stream events into
/// calls on the socket's `StreamSocketBridge`, and the bridge's reads into stream writes.
/// Until a bridge is attached (the agent is still connecting upstream) it holds what arrives;
/// those bytes are not consumed, so the stream window bounds them.
final class TunnelStreamLink: TunnelStreamHandler {
    let connection: TunnelConnection
    var streamID: Int32 = 0
    private var bridge: LoopBoundRef<StreamSocketBridge>?
    private var held: [ByteBuffer] = []
    private var heldEnd = false
    private var heldClose: UInt32?
    /// Role-specific reading of HEADERS (the gateway checks the agent's `:status`).
    var onHeaders: (([HeaderField], Bool) -> Void)?
    /// Called once when the stream is over, for accounting.
    var onClosed: ((UInt32) -> Void)?

    init(connection: TunnelConnection) {
        self.connection = connection
    }

    var ref: LoopBoundRef<TunnelStreamLink> {
        LoopBoundRef(self, eventLoop: connection.eventLoop!)
    }

    func attach(_ bridge: LoopBoundRef<StreamSocketBridge>) {
        self.bridge = bridge
        for bytes in held { bridge.run { $0.writeToSocket(bytes) } }
        held = []
        if heldEnd { bridge.run { $0.tunnelEnded() } }
        if let code = heldClose { bridge.run { $0.tunnelClosed(errorCode: code) } }
    }

    // MARK: from the tunnel

    func received(headers: [HeaderField], endStream: Bool) {
        onHeaders?(headers, endStream)
    }

    func received(data: ByteBuffer) {
        if let bridge { bridge.run { $0.writeToSocket(data) } } else { held.append(data) }
    }

    func remoteEnded() {
        if let bridge { bridge.run { $0.tunnelEnded() } } else { heldEnd = true }
    }

    func closed(errorCode: UInt32) {
        onClosed?(errorCode)
        onClosed = nil
        if let bridge {
            bridge.run { $0.tunnelClosed(errorCode: errorCode) }
        } else {
            // No socket will ever write what was held: return its window to the connection.
            for bytes in held { connection.consume(stream: streamID, bytes: bytes.readableBytes) }
            held = []
            heldClose = errorCode
        }
    }

    func writable() {
        bridge?.run { $0.resumeReading() }
    }

    // MARK: from the socket (called on the tunnel loop)

    func fromSocket(_ bytes: ByteBuffer) {
        if !connection.write(stream: streamID, bytes) {
            bridge?.run { $0.pauseReading() }
        }
    }

    func socketEnded() {
        connection.finish(stream: streamID)
    }

    func socketFailed() {
        connection.reset(stream: streamID, code: NGHTTP2_CANCEL.rawValue)
    }

    func consumed(_ bytes: Int) {
        connection.consume(stream: streamID, bytes: bytes)
    }
}
