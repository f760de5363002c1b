import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// One configured policy and its per-client counting, shared by every event loop (the lock
/// is held for one table lookup and a bucket update).
final class PolicyCell: Sendable {
    let policy: AccessPolicy
    /// Its answers, counted for `stats` (the same tally across reloads).
    let tally: PolicyCounters.Tally
    /// The policy's `forward_auth` service, with its own in-flight caps.
    let forwardAuth: ForwardAuthClient?
    private let state: NIOLockedValueBox<PolicyState>
    /// Its per-service bandwidth buckets, when it sets `bandwidth`.
    let bandwidth: BandwidthGates?

    /// `counting`: a previous cell whose policy `countsLike` this one: its per-client state
    /// is shared (a reload that changed only authentication).
    init(_ policy: AccessPolicy, tally: PolicyCounters.Tally, counting previous: PolicyCell? = nil) {
        self.policy = policy
        self.tally = tally
        forwardAuth = policy.forwardAuth.map(ForwardAuthClient.init)
        state = previous?.state ?? NIOLockedValueBox(PolicyState(policy: policy))
        // The same rate keeps its buckets (a reload that changed only authentication).
        if let previous, previous.policy.bandwidth == policy.bandwidth {
            bandwidth = previous.bandwidth
        } else {
            bandwidth = policy.bandwidth.map { BandwidthGates(rate: $0) }
        }
    }

    func connection(from address: IPAddress, key: ClientKey, now: Double, keepDenied: Bool) -> PolicyDecision {
        state.withLockedValue { $0.connection(from: address, key: key, now: now, keepDenied: keepDenied) }
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
/// a changed or new one starts empty — unless only its authentication changed (an edited
/// htpasswd file), which keeps the counting and takes the new credentials.
final class PolicySet: Sendable {
    let cells: [String: PolicyCell]
    private let byListener: [String: [PolicyCell]]
    private let byAgent: [String: [PolicyCell]]
    private let routes: RoutePolicyTable

    init(config: GatewayConfig, previous: PolicySet?, counters: PolicyCounters) {
        var cells: [String: PolicyCell] = [:]
        for p in config.policies {
            let old = previous?.cells[p.name]
            if let old, old.policy == p {
                cells[p.name] = old
            } else {
                cells[p.name] = PolicyCell(p, tally: counters.tally(for: p.name), counting: old.flatMap { $0.policy.countsLike(p) ? $0 : nil })
            }
        }
        self.cells = cells
        var byListener: [String: [PolicyCell]] = [:]
        for l in config.listeners where !l.policies.isEmpty {
            byListener[l.name] = l.policies.compactMap { cells[$0] }
        }
        self.byListener = byListener
        var byAgent: [String: [PolicyCell]] = [:]
        for a in config.agents where !a.policies.isEmpty {
            byAgent[a.name] = a.policies.compactMap { cells[$0] }
        }
        self.byAgent = byAgent
        routes = config.routePolicies
    }

    /// Some agent grant has policies: a retried stream stays with the agent that was checked.
    var pinsAgent: Bool { !byAgent.isEmpty }

    /// No policy is attached anywhere: connections need not know their client.
    var isUnused: Bool { byListener.isEmpty && byAgent.isEmpty && routes.isEmpty }

    /// The policies of the agent that serves a request or connection (its grant's `policy`).
    func chain(agent: String) -> [PolicyCell] {
        byAgent[agent] ?? []
    }

    /// The `[[route_policy]]` policies for a request (host normalized), least specific first.
    func chain(host: String, path: String) -> [PolicyCell] {
        routes.isEmpty ? [] : routes.policies(host: host, path: path).compactMap { cells[$0] }
    }

    /// The `[[route_policy]]` policies for a connection to TCP `port`.
    func chain(port: Int) -> [PolicyCell] {
        routes.isEmpty ? [] : routes.policies(port: port).compactMap { cells[$0] }
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
        for a in config.agents {
            for name in a.policies { out[name, default: []].append("agent \(a.name)") }
        }
        for r in config.routePolicies.entries {
            var places = r.hosts.map { "route \($0)\(r.pathPrefix == "/" ? "" : r.pathPrefix)" }
            places += r.ports.map { "route port \($0)" }
            for name in r.policies { out[name, default: []].append(contentsOf: places) }
        }
        return out
    }
}
