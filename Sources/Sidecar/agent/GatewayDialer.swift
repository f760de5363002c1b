import Logging
import NIOCore
import NIOPosix
import Protocol

/// Keeps one tunnel connection to one gateway alive: dial, TLS, handshake, serve, and on any
/// end redial after an exponential, jittered delay (DESIGN §2.3). Confined to one event loop.
final class GatewayDialer {
    private let agent: AgentContext
    private let gateway: HostPort
    private let slot: Int
    private let loop: EventLoop
    private let tls: TLSContext
    private var backoff = Backoff()
    private var logger: Logger
    private var stopped = false
    private var channel: Channel?

    init(agent: AgentContext, gateway: HostPort, slot: Int, loop: EventLoop, tls: TLSContext) {
        self.agent = agent
        self.gateway = gateway
        self.slot = slot
        self.loop = loop
        self.tls = tls
        var logger = agent.logger
        logger[metadataKey: "gateway"] = "\(gateway)"
        logger[metadataKey: "slot"] = "\(slot)"
        self.logger = logger
    }

    private var me: NIOLoopBound<GatewayDialer> { NIOLoopBound(self, eventLoop: loop) }

    func start() {
        dial()
    }

    func stop() {
        stopped = true
        channel?.close(promise: nil)
    }

    private func dial() {
        guard !stopped else { return }
        let serverName = agent.config.serverName ?? gateway.host
        let outcome = loop.makePromise(of: DialOutcome.self)
        let agent = self.agent
        let tls = self.tls
        let host = gateway.host
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: SocketTuning.tunnelWaterMark)
            .channelOption(.recvAllocator, value: SocketTuning.recvAllocator)
            .channelOption(.maxMessagesPerRead, value: 16)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(TLSHandler(context: tls, role: .client(serverName: serverName)))
                    try sync.addHandler(TunnelDialHandler(agent: agent, host: host, outcome: outcome))
                }
            }
        let me = self.me
        bootstrap.connect(host: gateway.host, port: gateway.port).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                me.value.connected(channel, outcome: outcome.futureResult)
            case .failure(let error):
                outcome.fail(error)
                me.value.retry(after: "cannot reach gateway: \(error)", authFailure: false)
            }
        }
    }

    private func connected(_ channel: Channel, outcome: EventLoopFuture<DialOutcome>) {
        self.channel = channel
        let me = self.me
        outcome.assumeIsolated().whenSuccess { result in
            switch result {
            case .upgraded:
                me.value.serving(channel)
            case .refused(let status, let reason):
                // Report the gateway's words verbatim; 401/403 will not fix themselves quickly.
                me.value.retry(after: "gateway refused the tunnel: \(status) \(reason)", authFailure: status == 401 || status == 403)
            case .failed(let reason):
                me.value.retry(after: reason, authFailure: false)
            }
        }
    }

    private func serving(_ channel: Channel) {
        let since = NIODeadline.now()
        logger.notice("connected to gateway", metadata: ["carrier": "h2"])
        let me = self.me
        channel.closeFuture.assumeIsolated().whenComplete { _ in
            let uptime = NIODeadline.now() - since
            me.value.backoff.connectionEnded(after: .nanoseconds(uptime.nanoseconds))
            me.value.retry(after: "tunnel connection closed", authFailure: false)
        }
    }

    private func retry(after reason: String, authFailure: Bool) {
        channel = nil
        guard !stopped else { return }
        let unit = Double.random(in: 0..<1)
        let delay = authFailure ? backoff.afterAuthFailure(unit: unit) : backoff.next(unit: unit)
        let ms = delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000
        let level: Logger.Level = authFailure ? .error : .warning
        logger.log(level: level, "\(reason); reconnecting", metadata: ["retry_in_ms": "\(ms)"])
        let me = self.me
        loop.scheduleTask(in: .milliseconds(ms)) { me.value.dial() }
    }
}
