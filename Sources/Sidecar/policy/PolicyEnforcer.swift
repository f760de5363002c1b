import NIOCore
import Protocol

/// Asks a connection's policies about it and its requests, counts the answers and logs
/// refusals (at most once per interval per policy and answer, `RepeatedEvents`). One per
/// public connection: it keeps the policies and attachments of the configuration current
/// when the connection was accepted, so a reload does not change the rules under a running
/// connection; its requests' host, path and agent choose among those attachments.
///
/// Every attachment that matches applies, in this order: the listener's, the matching
/// `[[route_policy]]` tables' (least specific first), the serving agent's; a policy
/// reached twice is checked once. The first refusal decides.
struct PolicyEnforcer: Sendable {
    /// The listener's policies.
    let chain: [PolicyCell]
    /// The attachments the connection started with.
    let set: PolicySet
    let gateway: GatewayContext
    let listener: String
    /// The real client (after a PROXY header); nil for a Unix socket, which no policy knows.
    let client: IPAddress?
    private let key: ClientKey?

    init(gateway: GatewayContext, listener: String, addresses: ConnectionAddresses) {
        self.gateway = gateway
        self.listener = listener
        set = gateway.settings.policies
        chain = set.chain(listener: listener)
        // Connections of a gateway without attached policies pay for nothing more.
        client = set.isUnused ? nil : addresses.client?.address
        key = client.map(ClientKey.init)
    }

    static var now: Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

    /// A new connection. `addressRules`: whether a denied address is refused here (TCP)
    /// rather than per request (HTTP answers each request with 403). When allowed, the
    /// connection's close is hooked to give back its place in the policies that count open
    /// connections.
    func admitConnection(_ channel: Channel, addressRules: Bool) -> PolicyDecision {
        admit(chain, channel, addressRules: addressRules)
    }

    /// A TCP connection to `port` served by `agent`, after the listener's policies passed:
    /// the port's `[[route_policy]]` policies, then the agent's.
    func admitTCP(_ channel: Channel, port: Int, agent: String) -> PolicyDecision {
        admit(Self.without(chain, set.chain(port: port) + set.chain(agent: agent)), channel, addressRules: true)
    }

    private func admit(_ chain: [PolicyCell], _ channel: Channel, addressRules: Bool) -> PolicyDecision {
        guard !chain.isEmpty else { return .allow }
        guard let client, let key else { return refused(.deny(policy: chain[0].policy.name), request: false) }
        let now = Self.now
        var admitted: [PolicyCell] = []
        for cell in chain {
            let d = cell.connection(from: client, key: key, now: now, keepDenied: !addressRules)
            // Kept open to be answered 403 per request, and counted like an allowed one.
            if case .deny = d, !addressRules {
                admitted.append(cell)
                continue
            }
            if d != .allow {
                for c in admitted { c.closed(key) }
                return refused(d, request: false)
            }
            admitted.append(cell)
        }
        // HTTP connections count their requests instead.
        if addressRules { for cell in chain { cell.tally.allowed.add() } }
        channel.closeFuture.whenComplete { [admitted] _ in for c in admitted { c.closed(key) } }
        return .allow
    }

    /// An HTTP request before routing: the listener's policies, then the `[[route_policy]]`
    /// ones of its host (normalized) and path. Returns the policies checked, which
    /// `admitRequest(agent:after:)` skips.
    func admitRequest(host: String, path: String) -> (PolicyDecision, checked: [PolicyCell]) {
        let all = Self.without([], chain + set.chain(host: host, path: path))
        return (admitRequest(all), all)
    }

    /// The same request once routed: the serving agent's policies not already checked.
    func admitRequest(agent: String, after checked: [PolicyCell]) -> PolicyDecision {
        admitRequest(Self.without(checked, set.chain(agent: agent)))
    }

    /// `cells` in order, without those in `checked` and without repeats.
    static func without(_ checked: [PolicyCell], _ cells: [PolicyCell]) -> [PolicyCell] {
        var seen = Set(checked.map(ObjectIdentifier.init))
        return cells.filter { seen.insert(ObjectIdentifier($0)).inserted }
    }

    /// One HTTP request; the first policy that refuses decides.
    private func admitRequest(_ chain: [PolicyCell]) -> PolicyDecision {
        guard !chain.isEmpty else { return .allow }
        guard let client, let key else { return refused(.deny(policy: chain[0].policy.name), request: true) }
        let now = Self.now
        for cell in chain {
            let d = cell.request(from: client, key: key, now: now)
            if d != .allow { return refused(d, request: true) }
        }
        for cell in chain { cell.tally.allowed.add() }
        return .allow
    }

    private func refused(_ d: PolicyDecision, request: Bool) -> PolicyDecision {
        guard let policy = d.policy else { return d }
        gateway.stats.policies.tally(for: policy).counted(d)
        var metadata: [String: String] = [
            "policy": policy, "decision": d.label, "listener": listener, "client": client.map { "\($0)" } ?? "?",
            "what": request ? "request" : "connection",
        ]
        if case .limit(_, let l) = d { metadata["limit"] = l.kind.rawValue }
        gateway.events.record(.policyRefused(policy: policy, decision: d.label), metadata.mapValues { .string($0) })
        return d
    }
}

extension PolicyDecision {
    /// The HTTP answer for a refusal: status, reason for the error page, extra fields.
    var httpRefusal: HTTPRefusal? {
        switch self {
        case .allow:
            return nil
        case .deny(let policy):
            var r = HTTPRefusal(403, "access denied by policy \(policy)")
            r.decision = self
            return r
        case .limit(let policy, let l):
            var r = HTTPRefusal(429, "rate limit of policy \(policy) reached (\(l.kind.rawValue))")
            r.fields = [HeaderField("retry-after", String(l.retryAfter))]
                + l.headerFields(policy: policy).map { HeaderField($0.0.lowercased(), $0.1) }
            r.decision = self
            return r
        }
    }
}
