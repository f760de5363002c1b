/// Decides whether the daemon may tell systemd it is alive (DESIGN §5): only when every
/// event loop has run its probe recently. A loop stuck in a handler stops the pings, and
/// systemd restarts the service once `WatchdogSec=` passes without one.
struct WatchdogGate: Equatable, Sendable {
    /// Longest a loop may go without running its probe and still count as alive.
    let maxAge: UInt64
    /// The loops reported stuck at the last check, so a stuck episode is logged once.
    private(set) var stuck: [Int] = []

    init(maxAgeNanoseconds: UInt64) {
        self.maxAge = maxAgeNanoseconds
    }

    enum Decision: Equatable, Sendable {
        case ping
        /// Loops (by index) whose probe is overdue; `newly` when this is the first check to see it.
        case withhold(stuck: [Int], ages: [UInt64], newly: Bool)
    }

    /// `lastRun[i]` is when loop `i` last ran its probe; all times in monotonic nanoseconds.
    mutating func check(lastRun: [UInt64], now: UInt64) -> Decision {
        let ages = lastRun.map { now >= $0 ? now - $0 : 0 }
        let overdue = ages.indices.filter { ages[$0] > maxAge }
        defer { stuck = overdue }
        if overdue.isEmpty { return .ping }
        return .withhold(stuck: overdue, ages: overdue.map { ages[$0] }, newly: overdue != stuck)
    }
}
