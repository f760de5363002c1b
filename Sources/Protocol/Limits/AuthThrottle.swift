/// Failed tunnel authentication, throttled per client address (DESIGN §9): after
/// `failures` failures within `window`, the address's handshakes are refused at once for
/// `firstBlock`, doubling with every further block up to `maxBlock`. Refusing at accept
/// costs a descriptor for a moment; waiting (a tarpit) would hold one per attempt. An
/// address quiet for `maxBlock` after its block starts over. At most `capacity` addresses
/// are remembered (`ClockTable`); an attacker with more addresses than that pushes old ones
/// out, which costs it a fresh set of `failures` attempts each.
public struct AuthThrottle: Sendable {
    public struct Policy: Equatable, Sendable {
        public var failures = 5
        public var window: Duration = .seconds(60)
        public var firstBlock: Duration = .seconds(10)
        public var maxBlock: Duration = .seconds(600)
        public var capacity = 4096

        public init() {}
    }

    public enum Verdict: Equatable {
        case allowed
        case blocked(remaining: Duration)
    }

    /// 32 bytes: what one address costs besides its key and the table's slot.
    struct Entry: Sendable {
        var windowStart: Duration
        var blockedUntil: Duration = .zero
        var failures: UInt16 = 0
        /// Blocks so far; the next one lasts `firstBlock << level`.
        var level: UInt8 = 0
    }

    public let policy: Policy
    private var table: ClockTable<ClientKey, Entry>

    public init(policy: Policy = Policy()) {
        self.policy = policy
        self.table = ClockTable(capacity: policy.capacity)
    }

    public var trackedAddresses: Int { table.count }

    /// Whether a new handshake from `key` may proceed.
    public mutating func check(_ key: ClientKey, now: Duration) -> Verdict {
        guard let e = table[key], e.blockedUntil > now else { return .allowed }
        return .blocked(remaining: e.blockedUntil - now)
    }

    /// Records a failed authentication; returns the block's length when this failure
    /// started one.
    public mutating func failed(_ key: ClientKey, now: Duration) -> Duration? {
        var e = table[key] ?? Entry(windowStart: now)
        if e.level > 0 && now - e.blockedUntil >= policy.maxBlock { e.level = 0 }
        if now - e.windowStart >= policy.window {
            e.windowStart = now
            e.failures = 0
        }
        e.failures += 1
        var started: Duration?
        if Int(e.failures) >= policy.failures {
            let block = min(policy.firstBlock * (1 << Int(e.level)), policy.maxBlock)
            e.blockedUntil = now + block
            if e.level < 20 { e.level += 1 }
            e.failures = 0
            e.windowStart = now
            started = block
        }
        table[key] = e
        return started
    }

    /// A successful authentication clears the address's record.
    public mutating func succeeded(_ key: ClientKey) {
        table.remove(key)
    }
}
