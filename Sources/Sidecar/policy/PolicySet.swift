import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// One configured policy and its per-client counting, shared by every event loop (the lock
/// is held for one table lookup and a bucket update).
final class PolicyCell: Sendable {
    let policy: AccessPolicy
    private let state: NIOLockedValueBox<PolicyState>

    init(_ policy: AccessPolicy) {
        self.policy = policy
        state = NIOLockedValueBox(PolicyState(policy: policy))
    }

    func connection(from address: IPAddress, key: ClientKey, now: Double) -> PolicyDecision {
        state.withLockedValue { $0.connection(from: address, key: key, now: now) }
    }

    func closed(_ key: ClientKey) {
        state.withLockedValue { $0.closed(key) }
    }

    func request(from address: IPAddress, key: ClientKey, now: Double) -> PolicyDecision {
        state.withLockedValue { $0.request(from: address, key: key, now: now) }
    }

    var trackedClients: Int { state.withLockedValue { $0.trackedClients } }
}

/// The policies of one configuration and where they are attached; immutable, swapped whole
/// by a reload (`GatewayContext.Settings`). A policy whose definition did not change keeps
/// its cell, so its clients keep their buckets and open-connection counts across a reload;
/// a changed or new one starts empty.
final class PolicySet: Sendable {
    let cells: [String: PolicyCell]
    private let byListener: [String: [PolicyCell]]

    init(config: GatewayConfig, previous: PolicySet?) {
        var cells: [String: PolicyCell] = [:]
        for p in config.policies {
            if let old = previous?.cells[p.name], old.policy == p {
                cells[p.name] = old
            } else {
                cells[p.name] = PolicyCell(p)
            }
        }
        self.cells = cells
        var byListener: [String: [PolicyCell]] = [:]
        for l in config.listeners where !l.policies.isEmpty {
            byListener[l.name] = l.policies.compactMap { cells[$0] }
        }
        self.byListener = byListener
    }

    /// The policies a connection on `listener` passes, in order (empty: none).
    func chain(listener: String) -> [PolicyCell] {
        byListener[listener] ?? []
    }

    /// Where each policy is attached, for `fastgwctl policies`.
    func attachments(config: GatewayConfig) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for l in config.listeners {
            for name in l.policies { out[name, default: []].append("listener \(l.name)") }
        }
        return out
    }
}
