import NIOCore
import Protocol

/// A public HTTPS connection that chose HTTP/2 (ALPN `h2`). The HTTP/2 session runs in a
/// `TunnelConnection` in the server role, as on the agent; this is its delegate, which turns
/// each request stream into an `H2PublicStream`, and the pipeline handler behind it, which
/// hears the gateway's drain. Idle connections close after `idle_timeout`.
final class H2PublicConnection: TunnelConnectionDelegate, ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// Windows and limits for public clients: enough for one fast stream, bounded per
    /// connection. A request body waits in at most its stream's window (64 KiB, growing to
    /// 1 MiB while the tunnel takes it, 4 MiB of growth per connection); a response waits in
    /// at most the send watermark plus the tunnel stream's window per stream, for at most
    /// `idle_timeout` if the client stops reading (docs/architecture.md, "Flow control").
    static func tuning(_ settings: HTTPSettings) -> H2Tuning {
        var t = H2Tuning(
            connectionWindow: 4 << 20, streamWindow: 1 << 20, sendWatermark: 64 << 10,
            maxFrameSize: 16 << 10, maxConcurrentStreams: 100, extendedConnect: false)
        // Room for the per-field overhead nghttp2 counts (32 bytes); the exact head limit,
        // with a 431 page, is applied to the decoded request (H2PublicStream.begin).
        t.maxHeaderFields = 256
        t.maxHeaderListSize = settings.maxHeaderSize + 32 * t.maxHeaderFields
        return t
    }

    let gateway: GatewayContext
    let listener: String
    let tls: PublicTLSSession
    let settings: HTTPSettings
    let loop: EventLoop
    let clientAddress: String
    /// Where this connection's requests come from, for their forwarding fields.
    let hop: ForwardedFields.Hop
    /// The connection's `TunnelAddressFields`, made once.
    let addressFields: [HeaderField]
    /// The access policies this connection started with, asked about every request.
    let policy: PolicyEnforcer
    private weak var connection: TunnelConnection?
    private var openStreams = 0
    private var requests = 0
    private var idleTimer: Scheduled<Void>?

    init(gateway: GatewayContext, listener: String, tls: PublicTLSSession, channel: Channel) {
        self.gateway = gateway
        self.listener = listener
        self.tls = tls
        self.settings = gateway.settings.config.http
        self.loop = channel.eventLoop
        let addresses = channel.publicAddresses
        self.clientAddress = addresses.clientDescription
        self.hop = ForwardedFields.Hop(gateway: gateway, addresses: addresses)
        self.addressFields = TunnelAddressFields.of(addresses)
        self.policy = PolicyEnforcer(gateway: gateway, listener: listener, addresses: addresses)
    }

    /// The pipeline's HTTP/2 handlers for `channel`, after the handshake chose `h2`.
    static func install(on channel: Channel, gateway: GatewayContext, listener: String, tls: PublicTLSSession,
                        after position: ChannelHandler) throws {
        let front = H2PublicConnection(gateway: gateway, listener: listener, tls: tls, channel: channel)
        // Over its connection limits the client is closed before HTTP/2 starts; a denied
        // address gets a 403 for each request.
        guard front.policy.admitConnection(channel, addressRules: false) == .allow else {
            channel.close(promise: nil)
            return
        }
        let session = try H2Session(role: .server, tuning: tuning(front.settings), allocator: channel.allocator)
        // PINGs find dead clients; a live one answers within the timeout.
        let connection = TunnelConnection(session: session, keepaliveInterval: .seconds(30), keepaliveTimeout: .seconds(30))
        // A client that answers PINGs but reads nothing would hold its responses forever.
        connection.stallTimeout = TimeAmount(front.settings.idleTimeout)
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
        // The first request is due within header_timeout, as an HTTP/1.1 head is: a client
        // that sends the preface and nothing else holds nothing for long.
        armIdleTimer(after: TimeAmount(settings.headerTimeout))
    }

    func tunnel(_ connection: TunnelConnection, incomingStream id: Int32, headers: [HeaderField], endStream: Bool)
        -> TunnelStreamHandler?
    {
        openStreams += 1
        requests += 1
        idleTimer?.cancel()
        let stream = H2PublicStream(id: id, connection: connection, front: self)
        // Registered before it starts: its exchange may answer at once.
        connection.register(stream: id, handler: stream)
        stream.begin(fields: headers, endStream: endStream)
        return stream
    }

    func tunnelReceivedGoaway(_ connection: TunnelConnection) {}

    func tunnelRefusedHeaders(_ connection: TunnelConnection) {
        gateway.stats.headerBlocksRefused.add("public")
    }

    func tunnelClosed(_ connection: TunnelConnection, reason: String) {
        idleTimer?.cancel()
        gateway.stats.publicConnectionsActive.subtract()
    }

    /// A stream of this connection is over.
    func streamEnded() {
        openStreams -= 1
        if openStreams == 0 { armIdleTimer() }
    }

    private func armIdleTimer(after delay: TimeAmount? = nil) {
        idleTimer?.cancel()
        idleTimer = loop.assumeIsolated().scheduleTask(in: delay ?? TimeAmount(settings.idleTimeout)) { [weak self] in
            guard let self, self.openStreams == 0 else { return }
            if self.requests == 0 {
                // Nothing asked of us yet, so nothing to finish: no GOAWAY round trip.
                self.connection?.close(reason: "no request within header_timeout")
            } else {
                self.connection?.shutdownGracefully()
            }
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
