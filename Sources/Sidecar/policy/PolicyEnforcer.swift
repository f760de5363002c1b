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
    /// `client` as the per-client tables key it.
    let clientKey: ClientKey?

    init(gateway: GatewayContext, listener: String, addresses: ConnectionAddresses) {
        self.gateway = gateway
        self.listener = listener
        set = gateway.settings.policies
        chain = set.chain(listener: listener)
        // Connections of a gateway without attached policies pay for nothing more.
        client = set.isUnused ? nil : addresses.client?.address
        clientKey = client.map(ClientKey.init)
    }

    static var now: Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

    /// A new connection. `addressRules`: whether a denied address is refused here (TCP)
    /// rather than per request (HTTP answers each request with 403). When allowed, the
    /// connection's close is hooked to give back its place in the policies that count open
    /// connections.
    func admitConnection(_ channel: Channel, addressRules: Bool) -> PolicyDecision {
        admit(chain, addressRules: addressRules) { release in channel.closeFuture.whenComplete { _ in release() } }
    }

    /// A TCP connection to `port` served by `agent`, after the listener's policies passed:
    /// the port's `[[route_policy]]` policies, then the agent's.
    /// A policy that authenticates (an agent's grant may name one for its HTTP services)
    /// refuses TCP connections: they carry no credentials, and letting them in would open
    /// what the policy closes.
    func admitTCP(_ channel: Channel, port: Int, agent: String) -> PolicyDecision {
        let cells = Self.without(chain, set.chain(port: port) + set.chain(agent: agent))
        if let asking = cells.first(where: \.policy.authenticates) {
            return refused(.deny(policy: asking.policy.name), request: false, reason: "TCP connections carry no credentials")
        }
        return admit(cells, addressRules: true) { release in channel.closeFuture.whenComplete { _ in release() } }
    }

    /// A new UDP flow (the first datagram from a client ip:port) to a udp service of
    /// `agent`: the listener's policies and the agent's, as for a new TCP connection (address
    /// rules, connection rate and open-connection caps; a flow counts as a connection). When
    /// allowed, `release` (called once, when the flow ends) gives its place back.
    func admitFlow(agent: String) -> (PolicyDecision, release: @Sendable () -> Void) {
        let cells = Self.without(chain, set.chain(agent: agent))
        if let asking = cells.first(where: \.policy.authenticates) {
            return (refused(.deny(policy: asking.policy.name), request: false, reason: "UDP datagrams carry no credentials"), {})
        }
        var release: @Sendable () -> Void = {}
        let decision = admit(chain + cells, addressRules: true) { release = $0 }
        return (decision, release)
    }

    /// `whenClosed` gets what gives an allowed connection's places back, to run at its end.
    private func admit(
        _ chain: [PolicyCell], addressRules: Bool, whenClosed: (@escaping @Sendable () -> Void) -> Void
    ) -> PolicyDecision {
        guard !chain.isEmpty else { return .allow }
        guard let client, let key = clientKey else { return refused(.deny(policy: chain[0].policy.name), request: false) }
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
        whenClosed { [admitted] in for c in admitted { c.closed(key) } }
        return .allow
    }

    /// An HTTP request before routing: the listener's policies, then the `[[route_policy]]`
    /// ones of its host (normalized) and path. Returns the policies checked, which
    /// `admitRequest(agent:after:)` skips. Nothing is counted allowed yet: authentication
    /// (`authenticate`) may still refuse; `admitted(_:)` counts once the request goes on.
    /// `client`: the request's client (`requestClient`).
    func admitRequest(host: String, path: String, client: IPAddress?) -> (PolicyDecision, checked: [PolicyCell]) {
        let all = Self.without([], chain + set.chain(host: host, path: path))
        return (admitRequest(all, client: client), all)
    }

    /// The same request once routed: the serving agent's policies not already checked.
    /// Returns every policy the request passes (`checked` and the agent's).
    func admitRequest(agent: String, after checked: [PolicyCell], client: IPAddress?) -> (PolicyDecision, passed: [PolicyCell]) {
        let more = Self.without(checked, set.chain(agent: agent))
        return (admitRequest(more, client: client), checked + more)
    }

    /// Whom a request's policies judge: the connection's client, or — when that client is a
    /// trusted HTTP proxy (`hop.trusted`) — the client its X-Forwarded-For or Forwarded
    /// names, so clients behind a trusted proxy have their own buckets and address rules
    /// (as the access record and the upstream name them). Nil when no policy is attached.
    func requestClient(_ head: HTTPHead, hop: ForwardedFields.Hop) -> IPAddress? {
        guard let client else { return nil }
        guard hop.trusted else { return client }
        return ForwardedFields.client(head: head, peer: client, trusted: gateway.settings.config.trustedProxies)
    }

    /// A request every policy of `cells` let through.
    func admitted(_ cells: [PolicyCell]) {
        for cell in cells { cell.tally.allowed.add() }
    }

    /// `cells` in order, without those in `checked` and without repeats.
    static func without(_ checked: [PolicyCell], _ cells: [PolicyCell]) -> [PolicyCell] {
        var seen = Set(checked.map(ObjectIdentifier.init))
        return cells.filter { seen.insert(ObjectIdentifier($0)).inserted }
    }

    /// One HTTP request; the first policy that refuses decides.
    private func admitRequest(_ chain: [PolicyCell], client: IPAddress?) -> PolicyDecision {
        guard !chain.isEmpty else { return .allow }
        guard let client else { return refused(.deny(policy: chain[0].policy.name), request: true, client: nil) }
        let key = ClientKey(client)
        let now = Self.now
        for cell in chain {
            let d = cell.request(from: client, key: key, now: now)
            if d != .allow { return refused(d, request: true, client: client) }
        }
        return .allow
    }

    /// `client`: whom the refusal was about (a request's client may be the one a trusted
    /// proxy named); the connection's by default.
    func refused(_ d: PolicyDecision, request: Bool, reason: String? = nil, client: IPAddress?? = .none) -> PolicyDecision {
        let client = client ?? self.client
        guard let policy = d.policy else { return d }
        gateway.stats.policies.tally(for: policy).counted(d)
        var metadata: [String: String] = [
            "policy": policy, "decision": d.label, "listener": listener, "client": client.map { "\($0)" } ?? "?",
            "what": request ? "request" : "connection",
        ]
        if case .limit(_, let l) = d { metadata["limit"] = l.kind.rawValue }
        if case .authUnavailable(_, _, let why) = d { metadata["reason"] = why }
        if let reason { metadata["reason"] = reason }
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
        case .challenge(let policy, let realm):
            var r = HTTPRefusal(401, "policy \(policy) needs a user name and password")
            r.fields = [HeaderField("www-authenticate", BasicCredentials.challenge(realm: realm))]
            r.decision = self
            return r
        case .authAnswer(let policy, let status, let fields, let body):
            var r = HTTPRefusal(status, "policy \(policy): the forward-auth service answered \(status)")
            r.fields = fields.map { HeaderField($0.name.asciiLowercased(), $0.value) }
            r.body = body
            r.decision = self
            return r
        case .authUnavailable(let policy, let status, _):
            // The reason (the auth service's address, a socket error) is for the log only.
            let why: String
            switch status {
            case 503: why = "credentials cannot be checked now; try again later"
            case 502: why = "the authentication service gave an unusable answer"
            default: why = "the request cannot be checked"
            }
            var r = HTTPRefusal(status, "policy \(policy): \(why)")
            r.decision = self
            return r
        }
    }
}
