/// The buckets of fastgw's latency histograms (seconds, Prometheus `le` bounds) and a
/// snapshot of one histogram as the exposition format wants it.
public enum LatencyBuckets {
    /// From 1 ms to 10 s: a tunnel hop on a LAN is a millisecond, an agent's upstream that
    /// times out is seconds.
    public static let bounds: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// The index of the first bucket whose bound is at least `seconds`; `bounds.count` for
    /// the overflow (+Inf only).
    public static func index(of seconds: Double) -> Int {
        var lo = 0, hi = bounds.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if bounds[mid] < seconds { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

/// One histogram's counts: `counts[i]` observations fell in bucket `i` (not cumulative; the
/// last is above every bound), their `sum` in seconds.
public struct HistogramSnapshot: Equatable, Sendable {
    public var counts: [Int]
    public var sum: Double

    public init(counts: [Int], sum: Double) {
        precondition(counts.count == LatencyBuckets.bounds.count + 1)
        self.counts = counts
        self.sum = sum
    }

    public var count: Int { counts.reduce(0, +) }

    /// Cumulative counts per bound, then +Inf, as `_bucket` samples need them.
    public var cumulative: [Int] {
        var total = 0
        return counts.map { total += $0; return total }
    }
}
