import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Protocol

/// The tunnel connection slots an agent or a visitor keeps dialled: one `GatewayDialer` per
/// gateway and index (`connections` per gateway), each on a loop of its own choosing. A
/// reload adds the slots the new configuration wants and drains the ones it no longer does.
final class GatewayDialers: Sendable {
    private let context: AgentContext
    private let group: MultiThreadedEventLoopGroup
    private let running = NIOLockedValueBox<[SlotKey: LoopBoundRef<GatewayDialer>]>([:])

    init(context: AgentContext, group: MultiThreadedEventLoopGroup) {
        self.context = context
        self.group = group
    }

    static func slots(for config: AgentConfig) -> [SlotKey] {
        config.gateways.flatMap { g in (0..<config.connections).map { SlotKey(gateway: g, index: $0) } }
    }

    /// Dials the slots `config` wants that are not running; the others drain within its
    /// `drain_timeout`. Called from the main thread or a reload queue, never from a loop.
    func apply(_ config: AgentConfig) -> (added: Int, removed: Int) {
        let wanted = Set(Self.slots(for: config))
        let current = Set(running.withLockedValue { Array($0.keys) })
        let removed = current.subtracting(wanted).sorted()
        let added = wanted.subtracting(current).sorted()
        stop(removed, deadline: TimeAmount(config.drainTimeout))
        start(added)
        return (added.count, removed.count)
    }

    /// Every slot drains within `deadline` (the daemon's drain).
    func stopAll(deadline: TimeAmount) {
        stop(running.withLockedValue { Array($0.keys) }, deadline: deadline)
    }

    private func start(_ keys: [SlotKey]) {
        let context = self.context
        for key in keys {
            let loop = group.next()
            // Not on a loop (see apply): waiting is fine.
            let ref = try? loop.submit { () -> LoopBoundRef<GatewayDialer> in
                let dialer = GatewayDialer(agent: context, key: key, loop: loop)
                dialer.start()
                return LoopBoundRef(dialer, eventLoop: loop)
            }.wait()
            running.withLockedValue { $0[key] = ref }
        }
    }

    private func stop(_ keys: [SlotKey], deadline: TimeAmount) {
        let stopped = running.withLockedValue { all in keys.compactMap { all.removeValue(forKey: $0) } }
        for d in stopped { d.run { $0.stop(deadline: deadline) } }
    }
}
