import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Protocol

/// Binds the gateway's listeners — the tunnel listener agents dial, one public port per TCP
/// service, the HTTP listeners — and changes them on reload; drains and stops the gateway.
final class GatewayServer: ManagedDaemon {
    /// One bound listening socket, identified by what it is and where it listens.
    struct Listener: Sendable {
        enum Kind: Hashable, Sendable { case tunnel, tcp, http, https, udp }
        let kind: Kind
        let name: String
        let address: HostPort
        let channel: Channel

        var key: Key { Key(kind: kind, address: address) }
    }

    struct Key: Hashable, Sendable {
        let kind: Listener.Kind
        let address: HostPort
    }

    struct Spec: Sendable {
        let kind: Listener.Kind
        let name: String
        let address: HostPort
        var key: Key { Key(kind: kind, address: address) }
    }

    let context: GatewayContext
    let group: MultiThreadedEventLoopGroup
    let lifecycle: Lifecycle
    let notifier: ServiceNotifier
    let activation: SocketActivation
    private let listeners = NIOLockedValueBox<[Listener]>([])
    /// Open public HTTP connections, told when the gateway drains.
    private let httpConnections = OpenChannels()
    /// Reloads run one at a time, off the event loops (binding waits for the socket).
    private let reloadQueue = DispatchQueue(label: "fastgw.gateway.reload")
    /// `[acme]`: obtains and renews certificates for the hosts no `[[certificate]]` covers.
    let acme: AcmeManager

    init(
        config: GatewayConfig, logger: Logger, group: MultiThreadedEventLoopGroup, lifecycle: Lifecycle,
        activation: SocketActivation
    ) throws {
        let tls = try TLSContext.tunnel(config)
        let acme = AcmeTLSSelection(board: AcmeChallengeBoard(logger: logger), store: AcmeCertificateStore(logger: logger))
        let publicTLS = try PublicCertificates.build(config, acme: acme).get()
        let stats = GatewayStats()
        let context = GatewayContext(
            settings: .init(config: config, tls: tls, publicTLS: publicTLS, counters: stats.policies), stats: stats, logger: logger,
            acme: acme)
        self.context = context
        self.group = group
        self.lifecycle = lifecycle
        self.activation = activation
        self.notifier = ServiceNotifier { GatewayServer.summary(context) }
        self.acme = AcmeManager(selection: acme, group: group, logger: logger)
    }

    /// The STATUS= line: what an operator sees in `systemctl status`.
    static func summary(_ context: GatewayContext) -> String {
        let connections = context.registry.connections
        return ServiceStatus.gateway(
            agents: Set(connections.map(\.agent)).count, tunnelConnections: connections.count,
            publicConnections: context.stats.publicConnectionsActive.value, streams: context.stats.streamsActive.value,
            draining: context.isDraining)
    }

    var logger: Logger { context.logger }
    var drainCoordinator: DrainCoordinator { context.drain }

    /// Binds or adopts everything (`plan` says which inherited socket each listener takes); a
    /// port that cannot be bound is a start-up error naming the listener. Public listeners
    /// hold their first connections until an agent serves their port (`startup_wait`).
    func start(plan: ListenerMatching.Plan) throws {
        var bound: [Listener] = []
        do {
            for spec in Self.specs(for: context.settings.config) {
                bound.append(try bind(spec, inherited: plan.claims[spec.name], held: spec.kind != .tunnel))
            }
        } catch {
            bound.forEach { $0.channel.close(promise: nil) }
            throw error
        }
        listeners.withLockedValue { $0 = bound }
        // Listeners are bound (and still holding connections): a challenge can be answered.
        acme.apply(context.settings.config, covered: context.settings.publicTLS.acmeCovered)
        let registry = context.registry
        let held: [StartupHold.Held] = bound.compactMap { l in
            switch l.kind {
            case .tunnel, .udp: return nil
            case .tcp: return .init(channel: l.channel, what: "port \(l.address.port)") { registry.serves(port: l.address.port) }
            case .http, .https: return .init(channel: l.channel, what: "\"\(l.name)\"") { registry.everyHostGrantServed }
            }
        }
        StartupHold(context: context, logger: logger, wait: TimeAmount(context.settings.config.startupWait))
            .release(held, on: group.next())
        startEdgeHousekeeping()
    }

    /// Counted edge events are flushed to the log, and heap freed by a flood goes back to
    /// the kernel once its connections have left.
    private func startEdgeHousekeeping() {
        let limits = context.settings.limits
        logger.info("connection limits", metadata: [
            "max_connections": "\(limits.publicPool.total)", "max_connections_per_ip": "\(limits.publicPool.perClient)",
            "max_tunnel_connections": "\(limits.tunnelPool.total)",
            "max_tunnel_connections_per_ip": "\(limits.tunnelPool.perClient)", "reserve": "\(limits.reserve)",
        ])
        for note in limits.notes { logger.warning("\(note)") }
        context.events.startFlushing(on: group.next())
        let admission = context.admission
        MemoryTrimmer(trimmed: context.stats.memoryTrims) {
            admission.openConnections(.public) + admission.openConnections(.tunnel)
        }.start(on: group.next())
    }

    static func specs(for config: GatewayConfig) -> [Spec] {
        (config.tunnel.listen.map { [Spec(kind: .tunnel, name: "tunnel", address: $0)] } ?? [])
            + config.tcpPorts.map { Spec(kind: .tcp, name: $0.name, address: $0.listen) }
            + config.udpPorts.map { Spec(kind: .udp, name: $0.name, address: $0.listen) }
            + config.listeners.compactMap { l in
                switch l.kind {
                case .tcp: return nil
                case .http: return Spec(kind: .http, name: l.name, address: l.listen)
                case .https: return Spec(kind: .https, name: l.name, address: l.listen)
                }
            }
    }

    /// Every listener as socket activation matches it, the control socket included.
    static func wanted(for config: GatewayConfig) -> [WantedListener] {
        specs(for: config).map { SocketActivation.wanted(name: $0.name, address: $0.address, datagram: $0.kind == .udp) }
            + [SocketActivation.wanted(name: "control", unixPath: config.controlSocket)]
            + (config.metrics.map { [SocketActivation.wanted(name: "metrics", address: $0.listen)] } ?? [])
    }

    var boundListeners: [Listener] { listeners.withLockedValue { $0 } }

    // MARK: binding

    /// `held`: the listener starts with accepting paused; `StartupHold` resumes it.
    private func bind(_ spec: Spec, inherited: InheritedListener?, held: Bool = false) throws -> Listener {
        var bootstrap: ServerBootstrap
        switch spec.kind {
        case .udp: return try bindUDP(spec, inherited: inherited)
        case .tunnel: bootstrap = tunnelBootstrap()
        case .tcp: bootstrap = tcpBootstrap(name: spec.name, port: spec.address.port)
        case .http: bootstrap = httpBootstrap(name: spec.name, tls: false)
        case .https: bootstrap = httpBootstrap(name: spec.name, tls: true)
        }
        if held { bootstrap = bootstrap.serverChannelOption(.autoRead, value: false) }
        let what = spec.kind == .tunnel ? "tunnel listener" : "listener \"\(spec.name)\""
        if let inherited {
            let channel: Channel
            do {
                channel = try SocketActivation.adopt(inherited, with: bootstrap)
            } catch {
                throw StartupError("\(what): \(error)")
            }
            logger.info("listening", metadata: [
                "listener": "\(what)", "address": "\(inherited.address)", "activation": "fd \(inherited.fd) \(inherited.name)",
            ])
            return Listener(kind: spec.kind, name: spec.name, address: spec.address, channel: channel)
        }
        do {
            let channel = try bootstrap.bind(host: spec.address.host, port: spec.address.port).wait()
            logger.info("listening", metadata: ["listener": "\(what)", "address": "\(spec.address)"])
            return Listener(kind: spec.kind, name: spec.name, address: spec.address, channel: channel)
        } catch {
            throw StartupError("\(what): cannot listen on \(spec.address): \(error)")
        }
    }

    /// A udp service's public port: one datagram socket, its flows on the socket's loop.
    private func bindUDP(_ spec: Spec, inherited: InheritedListener?) throws -> Listener {
        let context = self.context
        let bootstrap = DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            // Bursts from many clients wait in the kernel, not in drops (up to net.core.rmem_max).
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.maxMessagesPerRead, value: 16)
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            .channelOption(.writeBufferWaterMark, value: .init(low: 512 << 10, high: 1 << 20))
            // Room for the largest datagram: NIO's default (2 KiB) would truncate bigger ones.
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        UDPIngress(gateway: context, port: spec.address.port, listener: spec.name))
                }
            }
        let what = "listener \"\(spec.name)\""
        let channel: Channel
        if let inherited {
            do {
                channel = try SocketActivation.adopt(inherited, with: bootstrap)
            } catch {
                throw StartupError("\(what): \(error)")
            }
            logger.info("listening", metadata: [
                "listener": "\(what)", "address": "\(inherited.address)", "activation": "fd \(inherited.fd) \(inherited.name)",
            ])
        } else {
            do {
                channel = try bootstrap.bind(host: spec.address.host, port: spec.address.port).wait()
            } catch {
                throw StartupError("\(what): cannot listen on udp \(spec.address): \(error)")
            }
            logger.info("listening", metadata: ["listener": "\(what)", "address": "udp \(spec.address)"])
        }
        return Listener(kind: .udp, name: spec.name, address: spec.address, channel: channel)
    }

    private func tunnelBootstrap() -> ServerBootstrap {
        let context = self.context
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard context.admission.admit(channel, pool: .tunnel) else { throw ConnectionRefusedAtAccept() }
                    try SocketTuning.tuneTunnel(channel)
                    let sync = channel.pipeline.syncOperations
                    // The certificate in force when the agent arrives, so a reload applies to new handshakes.
                    // A reload that removed the dedicated listener: it is closing.
                    guard let tls = context.settings.tls else { throw ConnectionRefusedAtAccept() }
                    try sync.addHandler(TLSHandler(context: tls, role: .server))
                    try sync.addHandler(TunnelAcceptHandler(gateway: context))
                }
            }
    }

    /// What every public listener shares: a deep backlog, Nagle off, half-closes passed on,
    /// the public connection limits checked before anything is set up, and with
    /// `proxy_protocol` (read per connection, so a reload applies) the PROXY header first.
    private func publicBootstrap(listener: String, _ initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> ServerBootstrap {
        let context = self.context
        let admission = context.admission
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.recvAllocator, value: SocketTuning.recvAllocator)
            .childChannelInitializer { channel in
                guard admission.admit(channel, pool: .public) else {
                    return channel.eventLoop.makeFailedFuture(ConnectionRefusedAtAccept())
                }
                if context.settings.config.acceptsProxyHeader(listener: listener) {
                    guard ProxyHeaderHandler.admitPeer(channel, gateway: context, listener: listener) else {
                        return channel.eventLoop.makeFailedFuture(ConnectionRefusedAtAccept())
                    }
                    do {
                        try channel.pipeline.syncOperations.addHandler(ProxyHeaderHandler(gateway: context, listener: listener))
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                }
                return initializer(channel)
            }
    }

    private func tcpBootstrap(name: String, port: Int) -> ServerBootstrap {
        let context = self.context
        return publicBootstrap(listener: name) { channel in
            channel.eventLoop.makeCompletedFuture {
                let bridge = StreamSocketBridge(link: nil)
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(TCPIngress(gateway: context, port: port, listener: name, bridge: bridge))
                try sync.addHandler(bridge)
            }
        }
    }

    /// HTTP, or with `tls` HTTPS: the TLS handshake first, then the protocol ALPN chose.
    private func httpBootstrap(name: String, tls: Bool) -> ServerBootstrap {
        let context = self.context
        let connections = httpConnections
        return publicBootstrap(listener: name) { channel in
            connections.add(channel)
            return channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                guard tls else {
                    return try sync.addHandler(HTTPServerHandler(gateway: context, listener: name))
                }
                // The certificates in force when the client arrives, so a reload applies to new handshakes.
                let certificates = context.settings.publicTLS
                guard let server = certificates.listeners[name] else { throw ChannelError.ioOnClosedChannel }
                try sync.addHandler(TLSHandler(context: server, role: .server))
                try sync.addHandler(HTTPSNegotiation(gateway: context, listener: name, selector: certificates.selector))
            }
        }
    }

    // MARK: reload

    func reload() -> EventLoopFuture<String> {
        Reloading(queue: reloadQueue, notifier: notifier, logger: logger,
                  succeeded: context.stats.reloadsOK, failed: context.stats.reloadsFailed)
            .run(on: group.next()) { self.reloadNow() }
    }

    /// Validates everything first (config, TLS material, new ports bindable), then swaps.
    private func reloadNow() -> Result<String, ControlError> {
        if context.isDraining { return .failure(.draining("the gateway is draining; reload refused")) }
        let path = context.settings.config.file
        let config: GatewayConfig
        switch ConfigLoading.load(path: path) {
        case .failure(let e):
            return .failure(.invalidConfig(e.diagnostics.map(\.description).joined(separator: "; ")))
        case .success(.agent), .success(.visitor):
            return .failure(.invalidConfig("\(path): not a gateway configuration (it has an [agent] or [visitor] table)"))
        case .success(.gateway(let c)):
            config = c
        }
        let tls: TLSContext?
        do {
            tls = try TLSContext.tunnel(config)
        } catch {
            return .failure(.invalidConfig("\(path): \(error)"))
        }
        let publicTLS: PublicCertificates
        switch PublicCertificates.build(config, acme: context.acme) {
        case .success(let p): publicTLS = p
        case .failure(let e): return .failure(.invalidConfig(e.diagnostics.map(\.description).joined(separator: "; ")))
        }
        let current = boundListeners
        let wanted = Self.specs(for: config)
        let plan = activation.plan(Self.wanted(for: config))
        var added: [Listener] = []
        for spec in wanted where !current.contains(where: { $0.key == spec.key }) {
            do {
                added.append(try bind(spec, inherited: plan.claims[spec.name]))
            } catch {
                added.forEach { $0.channel.close(promise: nil) }
                return .failure(.invalidConfig("\(path): \(error)"))
            }
        }

        // Everything checked: swap.
        let old = context.settings.config
        context.settings = GatewayContext.Settings(
            config: config, tls: tls, publicTLS: publicTLS, counters: context.stats.policies, previous: context.settings.policies)
        // Certificates are verified against the new client_ca / client_crl before the
        // registry's lock is taken, once per distinct chain.
        let reverified = CertificateReverification(tls: tls, certificates: context.registry.connections.compactMap(\.certificate))
        let change = context.registry.updateGrants(config.agents, reverify: reverified.verify)
        for (tunnel, reason) in change.closed {
            logger.notice("closing agent connection after reload", metadata: ["reason": "\(reason)"])
            tunnel.run { $0.close(reason: reason) }
        }
        acme.apply(config, covered: publicTLS.acmeCovered)
        let visitorsClosed = context.visitors.withdrawn(by: config.visitors, reverify: reverified.verify)
        for (tunnel, reason) in visitorsClosed {
            logger.notice("closing visitor connection after reload", metadata: ["reason": "\(reason)"])
            tunnel.run { $0.close(reason: reason) }
        }
        for (tunnel, accepted, rejected) in change.reregistered {
            tunnel.run { ($0.delegate as? GatewayTunnel)?.notify(.registered(accepted: accepted, rejected: rejected)) }
        }
        let wantedKeys = Set(wanted.map(\.key))
        let removed = current.filter { !wantedKeys.contains($0.key) }
        listeners.withLockedValue { all in
            all = all.filter { wantedKeys.contains($0.key) } + added
        }
        for l in removed {
            logger.info("listener closed by reload", metadata: ["listener": "\(l.name)", "address": "\(l.address)"])
        }
        // Reloads run on their own queue, so waiting is allowed: the reply means the ports are shut.
        try? ListenerClosing.close(removed.map(\.channel), group: group).wait()
        var notes: [String] = ["\(added.count) listeners added", "\(removed.count) removed",
                               "\(change.closed.count) agent connections closed",
                               "\(visitorsClosed.count) visitor connections closed",
                               "\(change.reregistered.count) re-registered"]
        if old.controlSocket != config.controlSocket {
            notes.append("[control] socket change takes effect at the next restart")
        }
        if old.metrics != config.metrics {
            notes.append("[metrics] change takes effect at the next restart")
        }
        // A [limits] value lowered to keep the reserve is worth telling the operator.
        notes.append(contentsOf: context.settings.limits.notes)
        return .success("reloaded \(path): " + notes.joined(separator: ", "))
    }

    // MARK: drain

    /// Stops accepting (every listener but the control socket closes), tells agents, lets
    /// public connections finish, then ends the process.
    func drain(timeout: TimeAmount?) -> EventLoopFuture<DrainReport>? {
        let limit = timeout ?? TimeAmount(context.settings.config.drainTimeout)
        let loop = group.next()
        let context = self.context
        let lifecycle = self.lifecycle
        return context.drain.start(
            timeout: limit, on: loop, what: "public connections",
            begin: {
                context.logger.notice("drain started", metadata: .event(.drainStarted, [
                    "timeout_ms": "\(limit.nanoseconds / 1_000_000)",
                    "connections": "\(context.stats.publicConnectionsActive.value)",
                ]))
                self.notifier.stopping()
                self.acme.stop()
                let closed = self.stopAccepting()
                // Idle keep-alive connections close now, busy ones after their response.
                self.httpConnections.broadcast(HTTPDrainNotice())
                for c in context.registry.connections {
                    c.tunnel.run { ($0.delegate as? GatewayTunnel)?.notify(.draining) }
                }
                // Visitors open no new stream here; those in flight count as public connections.
                for v in context.visitors.all { v.tunnel.run { $0.goaway() } }
                return closed
            },
            remaining: { context.stats.publicConnectionsActive.value + context.stats.visitorStreamsActive.value },
            end: { report in
                context.logger.notice("drain finished", metadata: .event(.drainFinished, [
                    "left": "\(report.left)", "elapsed_ms": "\(report.elapsed.nanoseconds / 1_000_000)",
                ]))
                for c in context.registry.connections {
                    c.tunnel.run { $0.close(reason: "gateway drained") }
                }
                lifecycle.drainFinished(on: loop)
            })
    }

    /// Closes every listener without dropping a connection being accepted; the future
    /// completes when they are closed and what they accepted is counted.
    private func stopAccepting() -> EventLoopFuture<Void> {
        let all = listeners.withLockedValue { l -> [Listener] in
            defer { l = [] }
            return l
        }
        return ListenerClosing.close(all.map(\.channel), group: group)
    }
}

struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
