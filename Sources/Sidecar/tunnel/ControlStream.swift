import NIOCore
import Protocol

/// The first stream of every tunnel connection: newline-delimited JSON both ways for the
/// life of the connection (DESIGN §2.2). Messages are tiny and handled at once, so their
/// window is granted back immediately.
final class ControlStream: TunnelStreamHandler {
    let connection: TunnelConnection
    var streamID: Int32 = 0
    private var framer = LineFramer(limit: 1 << 20)
    var onMessage: ((ControlMessage) -> Void)?
    /// A broken control stream makes the connection useless; the owner closes it.
    var onFailure: ((String) -> Void)?

    init(connection: TunnelConnection) {
        self.connection = connection
    }

    func send(_ message: ControlMessage) {
        _ = connection.write(stream: streamID, ByteBuffer(bytes: message.encoded()))
    }

    func received(headers: [HeaderField], endStream: Bool) {}

    func received(data: ByteBuffer) {
        connection.consume(stream: streamID, bytes: data.readableBytes)
        let lines: [[UInt8]]
        do {
            lines = try framer.feed(data.readableBytesView)
        } catch {
            onFailure?("control message over 1 MiB")
            return
        }
        for line in lines {
            do {
                onMessage?(try ControlMessage.decode(line))
            } catch {
                onFailure?(error.description)
                return
            }
        }
    }

    func remoteEnded() {
        onFailure?("control stream ended by peer")
    }

    func closed(errorCode: UInt32) {
        onFailure?("control stream closed (HTTP/2 error \(errorCode))")
    }

    func writable() {}
}

enum ControlStreamHeaders {
    static let path = "/.fastgw/v1/control"

    static func request(authority: String) -> [HeaderField] {
        [HeaderField(":method", "POST"), HeaderField(":scheme", "https"),
         HeaderField(":authority", authority), HeaderField(":path", path),
         HeaderField("content-type", "application/x-ndjson")]
    }
}
