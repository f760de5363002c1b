import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// One tunnel connection slot: gateway address and index (`connections = N` gives N slots).
struct SlotKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    let gateway: HostPort
    let index: Int

    static func < (a: SlotKey, b: SlotKey) -> Bool {
        ("\(a.gateway)", a.index) < ("\(b.gateway)", b.index)
    }

    var description: String { "\(gateway)#\(index)" }
}

/// What the agent's `connections` and `services` commands show: the state of every slot,
/// written by its dialer and tunnel on their loop, read by the control socket.
final class AgentSlots: Sendable {
    enum State: String, Sendable {
        case connecting, connected, waiting, draining, stopped
    }

    struct Slot: Sendable {
        let key: SlotKey
        var state = State.connecting
        var carrier: String?
        /// The egress proxy dials go through (`http://host:port`, no credentials); nil: direct.
        var proxy: String?
        var connectedSince: NIODeadline?
        var rtt: TimeAmount?
        var lastError: String?
        var nextRetry: NIODeadline?
        var streams = 0
        var accepted: [String] = []
        var rejected: [ControlMessage.Rejected] = []
        var gatewayDraining = false
        var tunnel: LoopBoundRef<TunnelConnection>?
    }

    private let slots = NIOLockedValueBox<[SlotKey: Slot]>([:])

    func update(_ key: SlotKey, _ body: (inout Slot) -> Void) {
        slots.withLockedValue { all in
            var slot = all[key] ?? Slot(key: key)
            body(&slot)
            all[key] = slot
        }
    }

    func remove(_ key: SlotKey) {
        slots.withLockedValue { _ = $0.removeValue(forKey: key) }
    }

    var all: [Slot] {
        slots.withLockedValue { all in all.keys.sorted().map { all[$0]! } }
    }

    var liveTunnels: [LoopBoundRef<TunnelConnection>] {
        all.compactMap(\.tunnel)
    }
}
