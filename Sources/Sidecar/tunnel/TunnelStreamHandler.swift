import NIOCore
import Protocol

/// Receives one stream's events on the tunnel connection's event loop.
protocol TunnelStreamHandler: AnyObject {
    func received(headers: [HeaderField], endStream: Bool)
    func received(data: ByteBuffer)
    func remoteEnded()
    /// The stream is over; `errorCode` 0 is a clean end, anything else an abort.
    func closed(errorCode: UInt32)
    func writable()
}

/// The role-specific side of a tunnel connection: what the gateway or the agent does with it.
protocol TunnelConnectionDelegate: AnyObject {
    /// HTTP/2 is up (preface exchanged or about to be).
    func tunnelEstablished(_ connection: TunnelConnection)
    /// A stream the peer opened (server role). Return its handler, or nil after answering or
    /// resetting it yourself.
    func tunnel(_ connection: TunnelConnection, incomingStream id: Int32, headers: [HeaderField], endStream: Bool)
        -> TunnelStreamHandler?
    func tunnelReceivedGoaway(_ connection: TunnelConnection)
    /// This side's HTTP/2 session sent a GOAWAY of its own (the peer went over a limit or
    /// broke the protocol): the connection takes no new stream and closes when idle.
    func tunnelStoppedAccepting(_ connection: TunnelConnection, errorCode: UInt32)
    /// A header block over the limits was refused while it was being decoded.
    func tunnelRefusedHeaders(_ connection: TunnelConnection)
    func tunnelClosed(_ connection: TunnelConnection, reason: String)
    /// A keepalive PING came back.
    func tunnelMeasured(_ connection: TunnelConnection, rtt: TimeAmount)
}

extension TunnelConnectionDelegate {
    func tunnelMeasured(_ connection: TunnelConnection, rtt: TimeAmount) {}
    func tunnelStoppedAccepting(_ connection: TunnelConnection, errorCode: UInt32) {}
    func tunnelRefusedHeaders(_ connection: TunnelConnection) {}
}
