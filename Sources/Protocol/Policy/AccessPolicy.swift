/// One `[[policy]]`: who may come in (address rules) and how often (per-client rates and
/// open connections). Pure data; `PolicyState` holds the counting.
public struct AccessPolicy: Equatable, Sendable {
    public var name: String
    /// Empty: everyone not denied.
    public var allow = CIDRSet()
    /// Wins over `allow`.
    public var deny = CIDRSet()
    /// HTTP requests per client address (`requests_per_second` + `burst`).
    public var requests: RateLimit?
    /// New connections per client address, TCP and HTTP (`connections_per_second` + `burst`).
    public var connections: RateLimit?
    /// Bytes a second each service the policy applies to may move in each direction
    /// (`bandwidth`), over all its connections and requests; paced by `ByteRateLimiter`.
    public var bandwidth: Int?
    /// Open connections per client address at once.
    public var maxConnectionsPerClient: Int?
    /// `basic_auth`: HTTP requests need a user of this htpasswd file (401 otherwise).
    public var basicAuth: BasicAuthRule?
    /// `forward_auth`: HTTP requests need a 2xx from this service.
    public var forwardAuth: ForwardAuthRule?

    public init(name: String) {
        self.name = name
    }

    /// Whether the address rules let `address` in: not denied, and allowed when an allow
    /// list is given.
    public func admits(_ address: IPAddress) -> Bool {
        if deny.contains(address) { return false }
        return allow.isEmpty || allow.contains(address)
    }

    /// Whether `other` counts clients as this one does (same address rules and limits), so
    /// its per-client state carries over: a reload that only changes authentication (a
    /// user added to the htpasswd file) keeps the buckets and open-connection counts.
    public func countsLike(_ other: AccessPolicy) -> Bool {
        allow == other.allow && deny == other.deny && requests == other.requests && connections == other.connections
            && maxConnectionsPerClient == other.maxConnectionsPerClient
    }

    /// A policy that says nothing (no rule, no limit) is a config mistake.
    public var isEmpty: Bool {
        allow.isEmpty && deny.isEmpty && requests == nil && connections == nil && maxConnectionsPerClient == nil
            && basicAuth == nil && forwardAuth == nil && bandwidth == nil
    }
}
