/// The bookkeeping of an agent's name resolutions (I/O-free). Names come from two sources
/// with capacity of their own, so one cannot starve the other: names the operator configured
/// (udp upstreams) and names visitors send (network services' destinations). Per source at
/// most its `maxInFlight` lookups run at once (getaddrinfo blocks a thread and cannot be
/// cancelled, so a slot is held until the lookup returns; a lookup still queued when its
/// caller's deadline passed is `abandoned` without running). Answers are kept for
/// `cacheSeconds` and failures for `failureSeconds` in a CLOCK table of `cacheEntries` names,
/// so a udp upstream's name is not looked up per flow and a name that does not resolve is not
/// looked up per attempt. getaddrinfo tells no TTL: the cache times are short on purpose.
public struct ResolutionGate<Value> {
    public enum Source: Sendable {
        /// A name in the agent's own configuration (udp upstream).
        case configured
        /// A name a visitor sent (a network service's destination).
        case requested
    }

    public struct Limits: Equatable, Sendable {
        public var maxInFlight = 32
        public var maxConfiguredInFlight = 8
        public var cacheEntries = 256
        public var cacheSeconds: Double = 10
        public var failureSeconds: Double = 5
        public init() {}

        public func cap(_ source: Source) -> Int {
            source == .configured ? maxConfiguredInFlight : maxInFlight
        }
    }

    public let limits: Limits
    public private(set) var inFlight = 0
    public private(set) var configuredInFlight = 0
    private var cache: ClockTable<String, (value: Value?, until: Double)>

    public init(limits: Limits = Limits()) {
        precondition(limits.maxInFlight > 0 && limits.maxConfiguredInFlight > 0 && limits.cacheEntries > 0)
        self.limits = limits
        cache = ClockTable(capacity: limits.cacheEntries)
    }

    public enum Admission {
        /// A fresh answer from the cache.
        case cached(Value)
        /// The name failed to resolve moments ago: refuse without a lookup.
        case failedRecently
        /// Look it up; call `finished` (or `abandoned`) when done.
        case lookUp
        /// The source's `maxInFlight` lookups are running: refuse.
        case busy
    }

    public mutating func admit(_ name: String, from source: Source = .requested, now: Double) -> Admission {
        if let hit = cache[name] {
            if hit.until > now { return hit.value.map { .cached($0) } ?? .failedRecently }
            cache.remove(name)
        }
        switch source {
        case .configured:
            guard configuredInFlight < limits.maxConfiguredInFlight else { return .busy }
            configuredInFlight += 1
        case .requested:
            guard inFlight < limits.maxInFlight else { return .busy }
            inFlight += 1
        }
        return .lookUp
    }

    /// A lookup `admit` allowed returned: a success (`value` non-nil) is cached for
    /// `cacheSeconds`, a failure for `failureSeconds`.
    public mutating func finished(_ name: String, from source: Source = .requested, value: Value?, now: Double) {
        release(source)
        cache[name] = (value, now + (value == nil ? limits.failureSeconds : limits.cacheSeconds))
    }

    /// A lookup `admit` allowed did not run (its caller's deadline passed while it was
    /// queued): the slot is free again, nothing is cached.
    public mutating func abandoned(from source: Source = .requested) {
        release(source)
    }

    private mutating func release(_ source: Source) {
        switch source {
        case .configured: configuredInFlight -= 1
        case .requested: inFlight -= 1
        }
    }
}
extension ResolutionGate: Sendable where Value: Sendable {}
