import CNghttp2
import NIOCore
import Protocol

/// What a tunnel stream carries to or from, on its own event loop: a socket's bytes
/// (`StreamSocketBridge`) or one HTTP exchange. Bytes handed over with `writeToSocket` must be
/// reported back to the link with `consumed` once written, which grants their window again.
protocol StreamEndpoint: AnyObject, SendableMetatype {
    /// HEADERS the stream received after it was set up: a response, informational
    /// responses, trailers.
    func tunnelHeaders(_ fields: [HeaderField], endStream: Bool)
    func writeToSocket(_ bytes: ByteBuffer)
    func tunnelEnded()
    /// The stream is over; `errorCode` 0 is a clean end, anything else an abort.
    func tunnelClosed(errorCode: UInt32)
    func pauseReading()
    func resumeReading()
}

/// The tunnel-loop half of a stream: it turns stream events into calls on its endpoint, and
/// the endpoint's reads into stream writes. Until an endpoint is attached (the agent is still
/// connecting upstream) it holds what arrives; those bytes are not consumed, so the stream
/// window bounds them.
final class TunnelStreamLink<Endpoint: StreamEndpoint>: TunnelStreamHandler {
    private enum Held {
        case headers([HeaderField], endStream: Bool)
        case data(ByteBuffer)
    }

    let connection: TunnelConnection
    var streamID: Int32 = 0
    private var endpoint: LoopBoundRef<Endpoint>?
    private var held: [Held] = []
    private var heldEnd = false
    private var heldClose: UInt32?
    /// This side reset the stream: a clean end the peer sent meanwhile (a refusal's
    /// END_STREAM) must not reach the socket as EOF; the reset's close follows.
    private var resetSent = false
    /// Role-specific reading of HEADERS on the tunnel loop (the gateway checks a TCP
    /// stream's `:status`), before the endpoint gets them.
    var onHeaders: (([HeaderField], Bool) -> Void)?
    /// Called once when the stream is over, for accounting.
    var onClosed: ((UInt32) -> Void)?

    init(connection: TunnelConnection) {
        self.connection = connection
    }

    var ref: LoopBoundRef<TunnelStreamLink> {
        LoopBoundRef(self, eventLoop: connection.eventLoop!)
    }

    func attach(_ endpoint: LoopBoundRef<Endpoint>) {
        self.endpoint = endpoint
        for item in held {
            switch item {
            case .headers(let fields, let end): endpoint.run { $0.tunnelHeaders(fields, endStream: end) }
            case .data(let bytes): endpoint.run { $0.writeToSocket(bytes) }
            }
        }
        held = []
        if heldEnd { endpoint.run { $0.tunnelEnded() } }
        if let code = heldClose {
            endpoint.run { $0.tunnelClosed(errorCode: code) }
            self.endpoint = nil
        }
    }

    // MARK: from the tunnel

    func received(headers: [HeaderField], endStream: Bool) {
        onHeaders?(headers, endStream)
        if let endpoint { endpoint.run { $0.tunnelHeaders(headers, endStream: endStream) } } else { held.append(.headers(headers, endStream: endStream)) }
    }

    func received(data: ByteBuffer) {
        if let endpoint { endpoint.run { $0.writeToSocket(data) } } else { held.append(.data(data)) }
    }

    func remoteEnded() {
        guard !resetSent else { return }
        if let endpoint { endpoint.run { $0.tunnelEnded() } } else { heldEnd = true }
    }

    func closed(errorCode: UInt32) {
        onClosed?(errorCode)
        onClosed = nil
        if let endpoint {
            endpoint.run { $0.tunnelClosed(errorCode: errorCode) }
            // The endpoint usually holds this link: let go of it, or the pair outlives the stream.
            self.endpoint = nil
        } else {
            // No socket will ever write what was held: return its window to the connection.
            for case .data(let bytes) in held { connection.consume(stream: streamID, bytes: bytes.readableBytes) }
            held = held.filter { if case .headers = $0 { return true } else { return false } }
            heldClose = errorCode
        }
    }

    func writable() {
        endpoint?.run { $0.resumeReading() }
    }

    // MARK: from the endpoint (called on the tunnel loop)

    func fromSocket(_ bytes: ByteBuffer) {
        if !connection.write(stream: streamID, bytes) {
            endpoint?.run { $0.pauseReading() }
        }
    }

    func socketEnded(trailers: [HeaderField] = []) {
        connection.finish(stream: streamID, trailers: trailers)
    }

    func socketFailed() {
        resetSent = true
        connection.reset(stream: streamID, code: NGHTTP2_CANCEL.rawValue)
    }

    func consumed(_ bytes: Int) {
        connection.consume(stream: streamID, bytes: bytes)
    }

    func respond(headers: [HeaderField], endStream: Bool) {
        connection.respond(stream: streamID, headers: headers, endStream: endStream)
    }
}
