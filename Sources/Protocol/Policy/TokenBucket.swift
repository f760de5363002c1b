/// A token bucket: `rate` tokens a second flow in up to `burst`; each event takes one. Time
/// is given by the caller (seconds on a monotonic clock), so tests drive it without
/// sleeping. 16 bytes.
public struct TokenBucket: Equatable, Sendable {
    /// Tokens held at `updated` (may be fractional).
    public private(set) var tokens: Double
    private var updated: Double

    /// A new client starts with a full bucket: its first `burst` events pass at once.
    public init(burst: Int, now: Double) {
        tokens = Double(burst)
        updated = now
    }

    public enum Outcome: Equatable, Sendable {
        /// `remaining`: whole tokens left after this one.
        case taken(remaining: Int)
        /// `retryAfter`: seconds until one token is back (at least 1, rounded up).
        case empty(retryAfter: Int)
    }

    public mutating func take(_ limit: RateLimit, now: Double) -> Outcome {
        // A clock that went backwards (it should not; a monotonic one does not) refills nothing.
        let elapsed = max(0, now - updated)
        tokens = min(Double(limit.burst), tokens + elapsed * limit.perSecond)
        updated = max(updated, now)
        if tokens >= 1 {
            tokens -= 1
            return .taken(remaining: Int(tokens))
        }
        let wait = (1 - tokens) / limit.perSecond
        return .empty(retryAfter: max(1, Int(wait.rounded(.up))))
    }
}

/// `N_per_second` + `burst`: the sustained rate and the most events at once.
public struct RateLimit: Equatable, Sendable {
    public var perSecond: Double
    public var burst: Int

    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }
}
