import NIOCore
import Protocol

/// A public HTTPS connection that chose HTTP/2 (ALPN `h2`). The HTTP/2 session runs in a
/// `TunnelConnection` in the server role, as on the agent; this is its delegate, which turns
/// each request stream into an `H2PublicStream`, and the pipeline handler behind it, which
/// hears the gateway's drain. Idle connections close after `idle_timeout`.
final class H2PublicConnection: TunnelConnectionDelegate, ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// Windows and limits for public clients: enough for one fast stream, bounded per
    /// connection (request bodies wait in at most the connection window).
    static let tuning = H2Tuning(
        connectionWindow: 4 << 20, streamWindow: 1 << 20, sendWatermark: 256 << 10,
        maxFrameSize: 16 << 10, maxConcurrentStreams: 128, extendedConnect: false)

    let gateway: GatewayContext
    let listener: String
    let tls: PublicTLSSession
    let settings: HTTPSettings
    let loop: EventLoop
    let clientAddress: String
    let clientIP: String
    private weak var connection: TunnelConnection?
    private var openStreams = 0
    private var idleTimer: Scheduled<Void>?

    init(gateway: GatewayContext, listener: String, tls: PublicTLSSession, channel: Channel) {
        self.gateway = gateway
        self.listener = listener
        self.tls = tls
        self.settings = gateway.settings.config.http
        self.loop = channel.eventLoop
        self.clientAddress = channel.remoteAddress?.fastgwDescription ?? "?"
        self.clientIP = channel.remoteAddress?.ipAddress ?? clientAddress
    }

    /// The pipeline's HTTP/2 handlers for `channel`, after the handshake chose `h2`.
    static func install(on channel: Channel, gateway: GatewayContext, listener: String, tls: PublicTLSSession,
                        after position: ChannelHandler) throws {
        let front = H2PublicConnection(gateway: gateway, listener: listener, tls: tls, channel: channel)
        let session = try H2Session(role: .server, tuning: tuning, allocator: channel.allocator)
        // PINGs find dead clients; a live one answers within the timeout.
        let connection = TunnelConnection(session: session, keepaliveInterval: .seconds(30), keepaliveTimeout: .seconds(30))
        connection.delegate = front
        let sync = channel.pipeline.syncOperations
        // TLS → HTTP/2 session → this (for the drain notice).
        try sync.addHandler(connection, position: .after(position))
        try sync.addHandler(front, position: .after(connection))
    }

    var accounting: HTTPAccounting {
        HTTPAccounting(gateway: gateway, listener: listener, client: clientAddress)
    }

    // MARK: TunnelConnectionDelegate

    func tunnelEstablished(_ connection: TunnelConnection) {
        self.connection = connection
        let stats = gateway.stats
        stats.publicConnectionsActive.add()
        stats.publicConnectionsTotal.add()
        armIdleTimer()
    }

    func tunnel(_ connection: TunnelConnection, incomingStream id: Int32, headers: [HeaderField], endStream: Bool)
        -> TunnelStreamHandler?
    {
        openStreams += 1
        idleTimer?.cancel()
        let stream = H2PublicStream(id: id, connection: connection, front: self)
        // Registered before it starts: its exchange may answer at once.
        connection.register(stream: id, handler: stream)
        stream.begin(fields: headers, endStream: endStream)
        return stream
    }

    func tunnelReceivedGoaway(_ connection: TunnelConnection) {}

    func tunnelClosed(_ connection: TunnelConnection, reason: String) {
        idleTimer?.cancel()
        gateway.stats.publicConnectionsActive.subtract()
    }

    /// A stream of this connection is over.
    func streamEnded() {
        openStreams -= 1
        if openStreams == 0 { armIdleTimer() }
    }

    private func armIdleTimer() {
        idleTimer?.cancel()
        idleTimer = loop.assumeIsolated().scheduleTask(in: TimeAmount(settings.idleTimeout)) { [weak self] in
            guard let self, self.openStreams == 0 else { return }
            self.connection?.shutdownGracefully()
        }
    }

    // MARK: pipeline

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is HTTPDrainNotice {
            // GOAWAY; streams in flight finish, then the connection closes.
            connection?.shutdownGracefully()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
