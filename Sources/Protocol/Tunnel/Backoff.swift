/// Reconnect delays: exponential with full jitter (DESIGN §2.3).
public struct Backoff: Sendable {
    public var base: Duration = .milliseconds(500)
    public var cap: Duration = .seconds(30)
    /// A connection that stayed up this long resets the sequence.
    public var stableAfter: Duration = .seconds(60)
    private(set) var attempt = 0

    public init() {}

    /// The ceiling for the next delay before jitter: base·2^attempt, at most `cap`.
    var ceiling: Duration {
        let factor = 1 << min(attempt, 20)
        let d = base * factor
        return d > cap ? cap : d
    }

    /// Next delay; `unit` is a uniform random number in [0, 1) (injected for tests).
    public mutating func next(unit: Double) -> Duration {
        let c = ceiling
        attempt += 1
        return c * unit
    }

    /// After a refusal of credentials, wait the maximum every time.
    public mutating func afterAuthFailure(unit: Double) -> Duration {
        attempt = 20
        return cap * (0.5 + unit / 2)
    }

    /// Called when a connection ends; `uptime` is how long it was established.
    public mutating func connectionEnded(after uptime: Duration) {
        if uptime >= stableAfter { attempt = 0 }
    }
}
