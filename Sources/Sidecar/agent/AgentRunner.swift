import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Protocol

/// Runs one dialer per gateway and connection slot, spread over the event loops; changes the
/// set on reload and drains it on stop.
final class AgentRunner: ManagedDaemon {
    let context: AgentContext
    let group: MultiThreadedEventLoopGroup
    let lifecycle: Lifecycle
    let notifier: ServiceNotifier
    private let dialers: GatewayDialers
    private let reloadQueue = DispatchQueue(label: "fastgw.agent.reload")

    init(config: AgentConfig, logger: Logger, group: MultiThreadedEventLoopGroup, lifecycle: Lifecycle) throws {
        let tls = try TLSContext.client(
            caFile: config.ca, certificateChain: config.clientCert, privateKey: config.clientKey, alpn: ["http/1.1"])
        let context = AgentContext(settings: .init(config: config, tls: tls), logger: logger)
        self.context = context
        self.group = group
        dialers = GatewayDialers(context: context, group: group)
        self.lifecycle = lifecycle
        self.notifier = ServiceNotifier { AgentRunner.summary(context) }
    }

    /// The STATUS= line: what an operator sees in `systemctl status`.
    static func summary(_ context: AgentContext) -> String {
        let slots = context.slots.all
        return ServiceStatus.agent(
            connected: slots.filter { $0.state == .connected }.count, slots: slots.count,
            streams: context.stats.streamsActive.value, draining: context.isDraining)
    }

    var logger: Logger { context.logger }
    var drainCoordinator: DrainCoordinator { context.drain }

    func start() {
        context.events.startFlushing(on: group.next())
        // After a flood of streams the agent too keeps the heap their peak used.
        let stats = context.stats
        MemoryTrimmer(trimmed: stats.memoryTrims) { stats.streamsActive.value }.start(on: group.next())
        _ = dialers.apply(context.config)
    }

    // MARK: reload

    func reload() -> EventLoopFuture<String> {
        Reloading(queue: reloadQueue, notifier: notifier, logger: logger,
                  succeeded: context.stats.reloadsOK, failed: context.stats.reloadsFailed)
            .run(on: group.next()) { self.reloadNow() }
    }

    private func reloadNow() -> Result<String, ControlError> {
        if context.isDraining { return .failure(.draining("the agent is draining; reload refused")) }
        let path = context.config.file
        let config: AgentConfig
        switch ConfigLoading.load(path: path) {
        case .failure(let e):
            return .failure(.invalidConfig(e.diagnostics.map(\.description).joined(separator: "; ")))
        case .success(.gateway), .success(.visitor):
            return .failure(.invalidConfig("\(path): not an agent configuration (it has no [agent] table)"))
        case .success(.agent(let c)):
            config = c
        }
        let tls: TLSContext
        do {
            tls = try TLSContext.client(
                caFile: config.ca, certificateChain: config.clientCert, privateKey: config.clientKey, alpn: ["http/1.1"])
        } catch {
            return .failure(.invalidConfig("\(path): \(error)"))
        }
        let old = context.config
        context.settings = AgentContext.Settings(config: config, tls: tls)

        var notes: [String] = []
        if old.services != config.services {
            // The same connections carry the new declarations; the gateway answers each.
            let tunnels = context.slots.liveTunnels
            for t in tunnels { t.run { ($0.delegate as? AgentTunnel)?.registerServices() } }
            notes.append("services re-registered on \(tunnels.count) connections")
        } else {
            notes.append("services unchanged")
        }
        let (added, removed) = dialers.apply(config)
        notes.append("\(added) connection slots added, \(removed) draining")
        if old.controlSocket != config.controlSocket {
            notes.append("[control] socket change takes effect at the next restart")
        }
        if old.metrics != config.metrics {
            notes.append("[metrics] change takes effect at the next restart")
        }
        return .success("reloaded \(path): " + notes.joined(separator: ", "))
    }

    // MARK: drain

    /// GOAWAY on every tunnel connection, no redials; each connection closes once its
    /// streams are done; the process ends when all are closed or at the deadline.
    func drain(timeout: TimeAmount?) -> EventLoopFuture<DrainReport>? {
        let limit = timeout ?? TimeAmount(context.config.drainTimeout)
        let loop = group.next()
        let context = self.context
        let lifecycle = self.lifecycle
        return context.drain.start(
            timeout: limit, on: loop, what: "tunnel connections",
            begin: {
                context.logger.notice("drain started", metadata: .event(.drainStarted, [
                    "timeout_ms": "\(limit.nanoseconds / 1_000_000)", "streams": "\(context.stats.streamsActive.value)",
                ]))
                self.notifier.stopping()
                self.dialers.stopAll(deadline: limit + .seconds(1))
                return loop.makeSucceededVoidFuture()
            },
            remaining: { context.stats.tunnelConnectionsActive.value },
            end: { report in
                context.logger.notice("drain finished", metadata: .event(.drainFinished, [
                    "left": "\(report.left)", "streams_left": "\(context.stats.streamsActive.value)",
                    "elapsed_ms": "\(report.elapsed.nanoseconds / 1_000_000)",
                ]))
                for t in context.slots.liveTunnels { t.run { $0.close(reason: "agent drained") } }
                lifecycle.drainFinished(on: loop)
            })
    }
}
