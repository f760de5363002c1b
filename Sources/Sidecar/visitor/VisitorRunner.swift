import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Protocol

/// The visitor daemon (`fastgw visitor`): the agent's dialers, speaking as a visitor, keep
/// tunnel connections to the gateways; the local listeners (`[[forward]]`, `socks5`) turn
/// each accepted connection into a stream on one of them.
final class VisitorRunner: ManagedDaemon {
    let context: VisitorContext
    let group: MultiThreadedEventLoopGroup
    let lifecycle: Lifecycle
    let notifier: ServiceNotifier
    private let activation: SocketActivation
    private let dialers: GatewayDialers
    private let listeners = NIOLockedValueBox<[Listener]>([])
    private let reloadQueue = DispatchQueue(label: "fastgw.visitor.reload")

    /// A local listener; `key` tells a reload whether it changed.
    struct Listener: Sendable {
        let key: String
        let channel: Channel
    }

    /// A listener the configuration asks for: its socket activation name and how it serves.
    struct Spec: Sendable {
        let name: String
        let key: String
        let address: HostPort
        let forward: VisitorConfig.Forward?
    }

    init(config: VisitorConfig, logger: Logger, group: MultiThreadedEventLoopGroup, lifecycle: Lifecycle, activation: SocketActivation) throws {
        let tls = try Self.tls(config.connection)
        let context = VisitorContext(config: config, tls: tls, logger: logger)
        self.context = context
        self.group = group
        dialers = GatewayDialers(context: context.dial, group: group)
        self.lifecycle = lifecycle
        self.activation = activation
        self.notifier = ServiceNotifier { VisitorRunner.summary(context) }
    }

    static func tls(_ c: AgentConfig) throws -> TLSContext {
        try TLSContext.client(caFile: c.ca, certificateChain: c.clientCert, privateKey: c.clientKey, alpn: ["http/1.1"])
    }

    static func summary(_ context: VisitorContext) -> String {
        let slots = context.dial.slots.all
        let local = context.stats.listeners.all.values.reduce(0) { $0 + $1.connectionsActive.value }
        return ServiceStatus.visitor(
            connected: slots.filter { $0.state == .connected }.count, slots: slots.count,
            localConnections: local, draining: context.isDraining)
    }

    var logger: Logger { context.logger }
    var drainCoordinator: DrainCoordinator { context.dial.drain }

    /// `forward0`, `forward1`, … in file order, and `socks5`: the names a .socket unit gives
    /// its sockets (`FileDescriptorName=`).
    static func specs(for config: VisitorConfig) -> [Spec] {
        config.forwards.enumerated().map { i, f in
            Spec(name: "forward\(i)", key: "forward \(f.listen) \(f.service) \(f.target ?? "")", address: f.listen, forward: f)
        } + (config.socks5.map { [Spec(name: "socks5", key: "socks5 \($0)", address: $0, forward: nil)] } ?? [])
    }

    static func wanted(for config: VisitorConfig) -> [WantedListener] {
        specs(for: config).map { SocketActivation.wanted(name: $0.name, address: $0.address) }
            + [SocketActivation.wanted(name: "control", unixPath: config.controlSocket)]
    }

    /// Binds the local listeners (before READY, so a bad address fails the start).
    func bindListeners(plan: ListenerMatching.Plan) throws {
        var bound: [Listener] = []
        do {
            for spec in Self.specs(for: context.config) { bound.append(try bind(spec, inherited: plan.claims[spec.name])) }
        } catch {
            bound.forEach { $0.channel.close(promise: nil) }
            throw error
        }
        listeners.withLockedValue { $0 = bound }
    }

    func start() {
        context.dial.events.startFlushing(on: group.next())
        _ = dialers.apply(context.config.connection)
    }

    private func bind(_ spec: Spec, inherited: InheritedListener?) throws -> Listener {
        let context = self.context
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.recvAllocator, value: SocketTuning.recvAllocator)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A draining visitor takes no new local connection.
                    guard !context.isDraining else { throw ConnectionRefusedAtAccept() }
                    let sync = channel.pipeline.syncOperations
                    if let forward = spec.forward {
                        let bridge = StreamSocketBridge(link: nil)
                        try sync.addHandler(bridge)
                        try sync.addHandler(ForwardIngress(context: context, forward: forward, bridge: bridge))
                    } else {
                        try sync.addHandler(Socks5Handler(visitor: context, listen: spec.address))
                    }
                }
            }
        let what = spec.forward.map { "forward to \"\($0.service)\"" } ?? "SOCKS5 listener"
        let channel: Channel
        if let inherited {
            try Self.checkLoopback(spec, inherited: inherited, config: context.config)
            channel = try SocketActivation.adopt(inherited, with: bootstrap)
            logger.info("listening", metadata: ["listener": "\(what)", "address": "\(inherited.address)", "activation": "fd \(inherited.fd) \(inherited.name)"])
        } else {
            do {
                channel = try bootstrap.bind(host: spec.address.host, port: spec.address.port).wait()
            } catch {
                throw StartupError("\(what): cannot listen on \(spec.address): \(error)")
            }
            logger.info("listening", metadata: ["listener": "\(what)", "address": "\(spec.address)"])
        }
        return Listener(key: spec.key, channel: channel)
    }

    /// An inherited `socks5` socket is held to the rule the configured address is: beyond
    /// loopback only with `socks5_users` or `socks5_unauthenticated = true`.
    private static func checkLoopback(_ spec: Spec, inherited: InheritedListener, config: VisitorConfig) throws {
        guard spec.forward == nil, config.socks5Users == nil, !config.socks5Unauthenticated else { return }
        switch inherited.address {
        case .unix: return
        case .inet(let host, _), .udp(let host, _): if VisitorConfig.isLoopback(host) { return }
        }
        throw StartupError("SOCKS5 listener: the inherited socket \(inherited) listens on \(inherited.address), beyond "
            + "loopback, without socks5_users: anyone who reaches it would use this visitor's grants; add socks5_users, "
            + "bind the .socket unit to 127.0.0.1, or set socks5_unauthenticated = true")
    }

    // MARK: reload

    func reload() -> EventLoopFuture<String> {
        Reloading(queue: reloadQueue, notifier: notifier, logger: logger,
                  succeeded: context.dial.stats.reloadsOK, failed: context.dial.stats.reloadsFailed)
            .run(on: group.next()) { self.reloadNow() }
    }

    private func reloadNow() -> Result<String, ControlError> {
        if context.isDraining { return .failure(.draining("the visitor is draining; reload refused")) }
        let path = context.config.file
        let config: VisitorConfig
        switch ConfigLoading.load(path: path) {
        case .failure(let e):
            return .failure(.invalidConfig(e.diagnostics.map(\.description).joined(separator: "; ")))
        case .success(.visitor(let c)):
            config = c
        case .success:
            return .failure(.invalidConfig("\(path): not a visitor configuration (it has no [visitor] table)"))
        }
        let tls: TLSContext
        do {
            tls = try Self.tls(config.connection)
        } catch {
            return .failure(.invalidConfig("\(path): \(error)"))
        }
        let old = context.config
        // Listeners: those whose definition went away close first, so a changed one can rebind its address.
        let wanted = Self.specs(for: config)
        let wantedKeys = Set(wanted.map(\.key))
        let removed = listeners.withLockedValue { all -> [Listener] in
            let gone = all.filter { !wantedKeys.contains($0.key) }
            all = all.filter { wantedKeys.contains($0.key) }
            return gone
        }
        try? ListenerClosing.close(removed.map(\.channel), group: group).wait()
        let present = Set(listeners.withLockedValue { $0.map(\.key) })
        let plan = activation.plan(Self.wanted(for: config))
        var added: [Listener] = []
        for spec in wanted where !present.contains(spec.key) {
            do {
                added.append(try bind(spec, inherited: plan.claims[spec.name]))
            } catch {
                listeners.withLockedValue { $0 += added }
                return .failure(.invalidConfig("\(path): \(error) (listeners changed so far stay; the old configuration keeps serving)"))
            }
        }
        listeners.withLockedValue { $0 += added }
        context.config = config
        context.dial.settings = AgentContext.Settings(config: config.connection, tls: tls)

        let slots = dialers.apply(config.connection)
        var notes = ["\(added.count) listeners added", "\(removed.count) closed",
                     "\(slots.added) connection slots added", "\(slots.removed) draining"]
        if old.controlSocket != config.controlSocket { notes.append("[control] socket change takes effect at the next restart") }
        return .success("reloaded \(path): " + notes.joined(separator: ", "))
    }

    // MARK: drain

    /// Local listeners close, tunnel connections get GOAWAY and close once their streams end.
    func drain(timeout: TimeAmount?) -> EventLoopFuture<DrainReport>? {
        let limit = timeout ?? TimeAmount(context.config.connection.drainTimeout)
        let loop = group.next()
        let (context, lifecycle) = (self.context, self.lifecycle)
        return context.dial.drain.start(
            timeout: limit, on: loop, what: "tunnel connections",
            begin: {
                context.logger.notice("drain started", metadata: .event(.drainStarted, ["timeout_ms": "\(limit.nanoseconds / 1_000_000)"]))
                self.notifier.stopping()
                let channels = self.listeners.withLockedValue { all -> [Channel] in
                    defer { all = [] }
                    return all.map(\.channel)
                }
                // On a loop: closed without waiting; no new local connection is taken from here on.
                for c in channels { c.close(promise: nil) }
                self.dialers.stopAll(deadline: limit + .seconds(1))
                return loop.makeSucceededVoidFuture()
            },
            remaining: { context.dial.stats.tunnelConnectionsActive.value },
            end: { report in
                context.logger.notice("drain finished", metadata: .event(.drainFinished, [
                    "left": "\(report.left)", "elapsed_ms": "\(report.elapsed.nanoseconds / 1_000_000)",
                ]))
                for t in context.dial.slots.liveTunnels { t.run { $0.close(reason: "visitor drained") } }
                lifecycle.drainFinished(on: loop)
            })
    }
}
