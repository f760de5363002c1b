/// The counting behind one `AccessPolicy`: a token bucket per client address for each rate
/// it sets, and the open connections per client when it caps them. Not thread-safe: the
/// owner serialises calls. Time is injected (seconds, monotonic).
///
/// Memory is bounded whatever the clients do: the buckets live in a `ClockTable` of
/// `clientCapacity` entries (about 112 bytes each: a 64-byte slot holding the `ClientKey`,
/// two buckets and the mark, and about 48 bytes of hash index), so at most about 7 MiB per
/// policy that sets a rate. A client evicted by a flood of others comes back with a full
/// bucket, which is the price of the bound; CLOCK keeps recently seen clients for at least
/// one sweep of the hand. Open-connection counts are exact (a client with an open
/// connection is never forgotten) and bounded by the gateway's connection limit.
public struct PolicyState: Sendable {
    public static let clientCapacity = 65_536

    public let policy: AccessPolicy
    private var buckets: ClockTable<ClientKey, Buckets>
    private var open = ConnectionAdmission()

    struct Buckets: Sendable {
        var requests: TokenBucket?
        var connections: TokenBucket?
    }

    public init(policy: AccessPolicy, clientCapacity: Int = PolicyState.clientCapacity) {
        self.policy = policy
        buckets = ClockTable(capacity: clientCapacity)
    }

    /// Clients with rate state held.
    public var trackedClients: Int { buckets.count }

    /// Open connections counted for `key` (only when `max_connections_per_client` is set).
    public func openConnections(of key: ClientKey) -> Int { open.openConnections(of: key) }

    /// A new connection from `address`: the address rules, then the open-connection cap, then
    /// the connection rate. An allowed connection is counted open when the policy caps open
    /// connections; the caller then calls `closed(_:)` once when it ends. `keepDenied`: a
    /// denied connection stays open (HTTP answers its requests 403), so it is held to the
    /// cap and the rate like any other — otherwise the clients a policy refuses would be the
    /// only ones it does not limit — and, answered `.deny`, is counted open like an allowed one.
    public mutating func connection(
        from address: IPAddress, key: ClientKey, now: Double, keepDenied: Bool = false
    ) -> PolicyDecision {
        let denied = !policy.admits(address)
        if denied && !keepDenied { return .deny(policy: policy.name) }
        if let cap = policy.maxConnectionsPerClient, open.openConnections(of: key) >= cap {
            // Only a closing connection frees a place; one second is the honest minimum.
            return .limit(policy: policy.name, limit: .init(kind: .openConnections, retryAfter: 1, quota: cap))
        }
        if let rate = policy.connections, case .empty(let wait) = take(\.connections, rate, key: key, now: now) {
            return .limit(policy: policy.name, limit: .init(kind: .connections, retryAfter: wait, quota: Self.quota(rate)))
        }
        if policy.maxConnectionsPerClient != nil {
            _ = open.admit(key, limits: .init(total: .max, perClient: .max))
        }
        return denied ? .deny(policy: policy.name) : .allow
    }

    /// A connection `connection(from:)` allowed has ended.
    public mutating func closed(_ key: ClientKey) {
        if policy.maxConnectionsPerClient != nil { open.release(key) }
    }

    /// One HTTP request from `address`: the request rate, then the address rules. A denied
    /// client spends tokens too, so one that floods gets 429 like anyone else (deny still
    /// wins within the rate: 403).
    public mutating func request(from address: IPAddress, key: ClientKey, now: Double) -> PolicyDecision {
        if let rate = policy.requests, case .empty(let wait) = take(\.requests, rate, key: key, now: now) {
            return .limit(policy: policy.name, limit: .init(kind: .requests, retryAfter: wait, quota: Self.quota(rate)))
        }
        return policy.admits(address) ? .allow : .deny(policy: policy.name)
    }

    private mutating func take(
        _ which: WritableKeyPath<Buckets, TokenBucket?>, _ rate: RateLimit, key: ClientKey, now: Double
    ) -> TokenBucket.Outcome {
        var b = buckets[key] ?? Buckets()
        var bucket = b[keyPath: which] ?? TokenBucket(burst: rate.burst, now: now)
        let outcome = bucket.take(rate, now: now)
        b[keyPath: which] = bucket
        buckets[key] = b
        return outcome
    }

    /// Events a second as a whole number for `RateLimit-Policy` (at least 1).
    private static func quota(_ rate: RateLimit) -> Int { max(1, Int(rate.perSecond.rounded(.down))) }
}
