/// How much one HTTP/2 stream may receive before its reader has written anything out, under
/// manual flow control (DESIGN §2.3, docs/architecture.md "Flow control").
///
/// Every stream starts small (`initial`), so a stream whose reader stalls holds at most that
/// much; the window doubles, up to `maximum`, each time the reader has written out a whole
/// window's worth, so a stream that keeps up reaches full speed within a few round trips. The
/// growth of all streams of one connection together is capped by a shared budget: streams
/// that grew and then stalled can hold at most the budget, whatever their number.
public struct StreamReceiveWindow: Sendable, Equatable {
    public let initial: Int
    public let maximum: Int
    public private(set) var size: Int
    private var consumedSinceGrowth = 0

    public init(initial: Int, maximum: Int) {
        self.initial = initial
        self.maximum = max(initial, maximum)
        self.size = initial
    }

    /// Records `bytes` written out; returns the new window size when the stream earned a
    /// wider one and the budget had room for it.
    public mutating func consumed(_ bytes: Int, budget: inout StreamWindowBudget) -> Int? {
        consumedSinceGrowth += bytes
        guard size < maximum, consumedSinceGrowth >= size else { return nil }
        let next = min(size * 2, maximum)
        guard budget.take(next - size) else { return nil }
        size = next
        consumedSinceGrowth = 0
        return next
    }

    /// The stream is over: what it grew by goes back to the budget.
    public func release(to budget: inout StreamWindowBudget) {
        budget.giveBack(size - initial)
    }
}

/// The receive-window growth all streams of one connection share.
public struct StreamWindowBudget: Sendable, Equatable {
    public let limit: Int
    public private(set) var used = 0

    public init(limit: Int) {
        self.limit = limit
    }

    mutating func take(_ bytes: Int) -> Bool {
        guard used + bytes <= limit else { return false }
        used += bytes
        return true
    }

    mutating func giveBack(_ bytes: Int) {
        used = max(0, used - bytes)
    }
}
