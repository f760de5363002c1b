/// A token bucket counted in bytes, for `[[policy]] bandwidth`: `rate` bytes a second flow
/// in up to `burst`; a sender asks to pass some bytes and learns how many it may pass and
/// when. Time is given by the caller (seconds on a monotonic clock), so tests drive it
/// without sleeping. Not thread-safe; 40 bytes.
///
/// The burst is a quarter second of the rate, but at least 16 KiB and never more than one
/// second of it, so a long transfer lands within a few per cent of size / rate (200 MiB at
/// 10 MiB/s: 2.5 MiB early, 19.75 s instead of 20). A sender that finds the bucket short of
/// a `quantum` (1/256 s of the rate but at least 64 KiB, never more than the burst) reserves
/// one: the bucket goes into debt and the sender passes those bytes once they are paid for.
/// Senders sharing a bucket so take turns in the order they asked, each waits at most a few
/// hundred times a second, and a slow rate does not turn into a write per few bytes.
public struct ByteRateLimiter: Equatable, Sendable {
    /// Bytes a second.
    public let rate: Int
    public let burst: Int
    public let quantum: Int
    /// Bytes that may pass at `updated` (fractional; negative while reserved bytes are unpaid).
    public private(set) var tokens: Double
    private var updated: Double

    /// Starts full: the first `burst` bytes pass at once.
    public init(rate: Int, now: Double) {
        precondition(rate > 0)
        self.rate = rate
        burst = Self.burst(rate: rate)
        quantum = min(burst, max(64 << 10, rate / 256))
        tokens = Double(burst)
        updated = now
    }

    public static func burst(rate: Int) -> Int {
        max(rate / 4, min(rate, 16 << 10))
    }

    public struct Grant: Equatable, Sendable {
        /// Bytes paid for (the first ones of those asked for); ask again for the rest.
        public var bytes: Int
        /// Seconds until they may pass; 0: now.
        public var after: Double

        public init(bytes: Int, after: Double) {
            self.bytes = bytes
            self.after = after
        }
    }

    /// Asks to pass `n` bytes. When the bucket holds all of them, or at least a quantum, as
    /// many as it holds pass now; else a quantum (or all `n`, when fewer) is reserved and may
    /// pass once the bucket has refilled for it and for the reservations before it.
    public mutating func take(_ n: Int, now: Double) -> Grant {
        refill(now)
        // Whole bytes: a refill that falls short of a byte by a rounding error must not turn
        // into a wait too short for the clock to move.
        let whole = Int((tokens + 1e-6).rounded(.down))
        let least = min(n, quantum)
        if whole >= least {
            let granted = min(n, whole)
            tokens -= Double(granted)
            return Grant(bytes: granted, after: 0)
        }
        let wait = (Double(least) - tokens) / Double(rate)
        tokens -= Double(least)
        // At least a microsecond, so a clock with coarse steps still moves past it.
        return Grant(bytes: least, after: max(1e-6, wait))
    }

    /// Returns bytes paid for but not sent (another bucket of the same stream allowed fewer).
    public mutating func giveBack(_ n: Int) {
        tokens = min(Double(burst), tokens + Double(max(0, n)))
    }

    private mutating func refill(_ now: Double) {
        // A clock that went backwards (a monotonic one does not) refills nothing.
        let elapsed = max(0, now - updated)
        tokens = min(Double(burst), tokens + elapsed * Double(rate))
        updated = max(updated, now)
    }
}

extension AccessPolicy {
    /// `bandwidth`: 1 KiB to 100 GiB a second.
    public static let bandwidthRange = 1024...(100 << 30)
}
