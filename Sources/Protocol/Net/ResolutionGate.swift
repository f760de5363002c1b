/// The bookkeeping of an agent's name resolutions (I/O-free): at most `maxInFlight` lookups
/// run at once (getaddrinfo blocks a thread and cannot be cancelled, so a slot is held until
/// the lookup returns, even after its caller gave up at the deadline), and answers are kept
/// for `cacheSeconds` in a CLOCK table of `cacheEntries` names, so a udp upstream's name is
/// not looked up per flow. getaddrinfo tells no TTL: the cache time is short on purpose.
public struct ResolutionGate<Value> {
    public struct Limits: Equatable, Sendable {
        public var maxInFlight = 32
        public var cacheEntries = 256
        public var cacheSeconds: Double = 10
        public init() {}
    }

    public let limits: Limits
    public private(set) var inFlight = 0
    private var cache: ClockTable<String, (value: Value, until: Double)>

    public init(limits: Limits = Limits()) {
        precondition(limits.maxInFlight > 0 && limits.cacheEntries > 0)
        self.limits = limits
        cache = ClockTable(capacity: limits.cacheEntries)
    }

    public enum Admission {
        /// A fresh answer from the cache.
        case cached(Value)
        /// Look it up; call `finished` when the lookup returns.
        case lookUp
        /// `maxInFlight` lookups are running: refuse.
        case busy
    }

    public mutating func admit(_ name: String, now: Double) -> Admission {
        if let hit = cache[name] {
            if hit.until > now { return .cached(hit.value) }
            cache.remove(name)
        }
        guard inFlight < limits.maxInFlight else { return .busy }
        inFlight += 1
        return .lookUp
    }

    /// A lookup `admit` allowed returned; a success (`value` non-nil) is cached.
    public mutating func finished(_ name: String, value: Value?, now: Double) {
        inFlight -= 1
        if let value { cache[name] = (value, now + limits.cacheSeconds) }
    }
}
extension ResolutionGate: Sendable where Value: Sendable {}
