import Logging
import NIOCore
import NIOPosix
import Protocol

/// Keeps one tunnel connection slot to one gateway alive: dial, TLS, handshake, serve, and on
/// any end redial after an exponential, jittered delay (DESIGN §2.3). Confined to one event
/// loop; its state is published in `AgentSlots` for the control socket.
final class GatewayDialer {
    private let agent: AgentContext
    let key: SlotKey
    private let loop: EventLoop
    private var backoff = Backoff()
    private var carriers: CarrierChoice
    private var logger: Logger
    private var stopped = false
    private var dials = 0
    private var channel: Channel?
    private var tunnel: TunnelConnection?
    private var retryTask: Scheduled<Void>?
    /// Connections replaced while they finish their streams: their end starts no redial.
    private var retiring: Set<ObjectIdentifier> = []
    private var connectedAt: NIODeadline?

    init(agent: AgentContext, key: SlotKey, loop: EventLoop) {
        self.agent = agent
        self.key = key
        self.loop = loop
        self.carriers = CarrierChoice(transport: agent.settings.config.transport)
        var logger = agent.logger
        logger[metadataKey: "gateway"] = "\(key.gateway)"
        logger[metadataKey: "slot"] = "\(key.index)"
        self.logger = logger
    }

    private var me: NIOLoopBound<GatewayDialer> { NIOLoopBound(self, eventLoop: loop) }

    func start() {
        dial()
    }

    /// No more redials; the live connection, if any, drains (GOAWAY, in-flight streams
    /// finish) and is closed at `deadline` at the latest.
    func stop(deadline: TimeAmount) {
        guard !stopped else { return }
        stopped = true
        retryTask?.cancel()
        if let tunnel {
            agent.slots.update(key) { $0.state = .draining }
            tunnel.shutdownGracefully()
            let channel = self.channel
            loop.scheduleTask(in: deadline) { channel?.close(promise: nil) }
        } else {
            channel?.close(promise: nil)
            agent.slots.remove(key)
        }
    }

    /// The gateway said it is draining: its connection will close soon, and the gateway that
    /// replaces it should be dialled without a long back-off.
    func gatewayDraining() {
        backoff = Backoff()
    }

    /// Bounds a whole dial: TCP connect, an egress proxy's handshake, TLS and the upgrade.
    static let dialTimeout = TimeAmount.seconds(10)

    private func dial() {
        guard !stopped else { return }
        dials += 1
        if dials > 1 { agent.stats.reconnects.add() }
        agent.slots.update(key) { s in
            s.state = .connecting
            s.nextRetry = nil
        }
        let settings = agent.settings
        if carriers.transport != settings.config.transport { carriers = CarrierChoice(transport: settings.config.transport) }
        let carrier = carriers.current
        let serverName = settings.config.serverName ?? key.gateway.host
        let outcome = loop.makePromise(of: DialOutcome.self)
        let agent = self.agent
        let host = key.gateway.host
        let slot = key
        let gateway = key.gateway
        let proxy = settings.config.egress.proxy(for: gateway)
        logger[metadataKey: "proxy"] = proxy.map { "\($0)" }
        agent.slots.update(key) { $0.proxy = proxy.map { "\($0)" } }
        let deadline = NIODeadline.now() + Self.dialTimeout
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(Self.dialTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try SocketTuning.tuneTunnel(channel)
                    let installTunnel = { (sync: ChannelPipeline.SynchronousOperations) throws in
                        try sync.addHandler(TLSHandler(context: settings.tls, role: .client(serverName: serverName)))
                        try sync.addHandler(TunnelDialHandler(
                            agent: agent, slot: slot, host: host, carrier: carrier, outcome: outcome))
                    }
                    let sync = channel.pipeline.syncOperations
                    if let proxy {
                        try sync.addHandler(EgressProxyHandler(
                            proxy: proxy, gateway: gateway, outcome: outcome, installTunnel: installTunnel))
                    } else {
                        try installTunnel(sync)
                    }
                }
            }
        let me = self.me
        let target = proxy?.endpoint ?? gateway
        bootstrap.connect(host: target.host, port: target.port).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                me.value.connected(channel, carrier: carrier, outcome: outcome, deadline: deadline, proxy: proxy)
            case .failure(let error):
                outcome.fail(error)
                agent.stats.dialFailures.add(proxy == nil ? "unreachable" : "proxy_unreachable")
                let what = proxy.map { "cannot reach proxy \($0.endpoint) (for gateway \(gateway))" } ?? "cannot reach gateway"
                me.value.retry(after: "\(what): \(error)", authFailure: false)
            }
        }
    }

    /// The handshakes (the proxy's, TLS, the upgrade) must be done by the dial's `deadline`:
    /// a peer that accepts and then says nothing must not hold the slot.
    private func connected(
        _ channel: Channel, carrier: TunnelHandshake.Carrier, outcome: EventLoopPromise<DialOutcome>,
        deadline: NIODeadline, proxy: EgressProxy?
    ) {
        self.channel = channel
        let me = self.me
        let stats = agent.stats
        let seconds = Self.dialTimeout.nanoseconds / 1_000_000_000
        let expiry = loop.assumeIsolated().scheduleTask(deadline: deadline) {
            // A proxy still handshaking reports the timeout as its own; otherwise TLS or the
            // upgrade is what did not finish.
            channel.pipeline.fireUserInboundEventTriggered(DialDeadlinePassed(seconds: Int(seconds)))
            let via = proxy.map { " (through proxy \($0.endpoint))" } ?? ""
            outcome.succeed(.failed("no answer to the tunnel handshake within \(seconds) s of dialling\(via)"))
            channel.close(promise: nil)
        }
        outcome.futureResult.assumeIsolated().whenComplete { _ in expiry.cancel() }
        outcome.futureResult.assumeIsolated().whenSuccess { result in
            switch result {
            case .upgraded(let tunnel):
                me.value.serving(channel, tunnel: tunnel.value, carrier: carrier)
            case .refused(let status, let reason):
                stats.dialFailures.add("refused_\(status)")
                // Report the gateway's words verbatim; 401/403 will not fix themselves quickly.
                me.value.retry(after: "gateway refused the tunnel: \(status) \(reason)", authFailure: status == 401 || status == 403)
                me.value.handshakeFailed(status: status, reason: reason)
            case .failed(let reason):
                stats.dialFailures.add("handshake")
                me.value.retry(after: reason, authFailure: false)
                me.value.handshakeFailed(status: nil, reason: reason)
            case .proxyFailed(let failure):
                // The proxy, not the carrier, is the trouble: the carrier choice stays.
                stats.dialFailures.add(failure.isAuthentication ? "proxy_auth" : "proxy")
                me.value.retry(after: "\(failure)", authFailure: failure.isAuthentication, event: .agentDisconnected)
            }
        }
    }

    /// `transport = "auto"`: a handshake something on the way broke changes the carrier.
    private func handshakeFailed(status: Int?, reason: String) {
        guard let next = carriers.handshakeFailed(status: status) else { return }
        logger.warning("tunnel handshake broken on the way; the next dial uses the \(next == .websocket ? "WebSocket" : "direct") carrier", metadata: [
            "carrier": "\(next.rawValue)", "reason": "\(reason)",
        ])
    }

    private func serving(_ channel: Channel, tunnel: TunnelConnection, carrier: TunnelHandshake.Carrier) {
        let since = NIODeadline.now()
        self.tunnel = tunnel
        connectedAt = since
        agent.stats.tunnelConnectionsActive.add()
        agent.stats.tunnelConnectionsTotal.add()
        agent.slots.update(key) { s in
            s.state = .connected
            s.carrier = carrier.rawValue
            s.connectedSince = since
            s.gatewayDraining = false
            s.tunnel = LoopBoundRef(tunnel, eventLoop: self.loop)
        }
        logger.notice("connected to gateway", metadata: .event(.agentConnected, ["carrier": "\(carrier.rawValue)"]))
        if stopped { tunnel.shutdownGracefully() }
        let me = self.me
        let stats = agent.stats
        let slots = agent.slots
        let key = self.key
        (tunnel.delegate as? AgentTunnel)?.onStoppedAccepting = { code in
            me.value.replace(channel, errorCode: code)
        }
        channel.closeFuture.assumeIsolated().whenComplete { _ in
            stats.tunnelConnectionsActive.subtract()
            if me.value.retiring.remove(ObjectIdentifier(channel)) != nil { return }
            if slots.all.first(where: { $0.key == key })?.gatewayDraining == true { me.value.gatewayDraining() }
            let uptime = NIODeadline.now() - since
            me.value.backoff.connectionEnded(after: .nanoseconds(uptime.nanoseconds))
            me.value.tunnel = nil
            me.value.carriers.connectionEnded()
            me.value.retry(after: "tunnel connection closed", authFailure: false)
        }
    }

    /// The connection's HTTP/2 session refused the gateway with a GOAWAY of its own (DESIGN
    /// §2.3: only the agent's drain may stop a connection taking streams): it finishes what
    /// it carries, within the drain timeout, while a new connection is dialled — after the
    /// usual jittered back-off, which starts at up to 0.5 s and grows only if replacements
    /// keep coming (a gateway that breaks the protocol on every connection).
    private func replace(_ old: Channel, errorCode: UInt32) {
        guard channel === old, !stopped else { return }
        retiring.insert(ObjectIdentifier(old))
        agent.stats.tunnelReplacements.add()
        if let connectedAt { backoff.connectionEnded(after: .nanoseconds((NIODeadline.now() - connectedAt).nanoseconds)) }
        channel = nil
        tunnel = nil
        loop.scheduleTask(in: TimeAmount(agent.settings.config.drainTimeout)) { old.close(promise: nil) }
        retry(after: "tunnel connection stopped taking streams (HTTP/2 GOAWAY, error \(errorCode)); dialling a replacement",
              authFailure: false)
    }

    /// `event`: the journal's key event when it is not the default for `authFailure` (a
    /// proxy refusing credentials is no gateway rejecting the agent).
    private func retry(after reason: String, authFailure: Bool, event: KeyEvent? = nil) {
        channel = nil
        guard !stopped else {
            agent.slots.remove(key)
            logger.info("tunnel connection slot stopped", metadata: ["reason": "\(reason)"])
            return
        }
        let unit = Double.random(in: 0..<1)
        let delay = authFailure ? backoff.afterAuthFailure(unit: unit) : backoff.next(unit: unit)
        let ms = delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000
        let level: Logger.Level = authFailure ? .error : .warning
        let event: KeyEvent = event ?? (authFailure ? .registrationRejected : .agentDisconnected)
        logger.log(level: level, "\(reason); reconnecting", metadata: .event(event, ["retry_in_ms": "\(ms)"]))
        agent.slots.update(key) { s in
            s.state = .waiting
            s.tunnel = nil
            s.connectedSince = nil
            s.rtt = nil
            s.streams = 0
            s.lastError = reason
            s.nextRetry = .now() + .milliseconds(ms)
        }
        let me = self.me
        retryTask = loop.scheduleTask(in: .milliseconds(ms)) { me.value.dial() }
    }
}

/// Fired into a tunnel connection's pipeline when its dial's deadline passes before the
/// tunnel handshake is done.
struct DialDeadlinePassed: Sendable {
    let seconds: Int
}
