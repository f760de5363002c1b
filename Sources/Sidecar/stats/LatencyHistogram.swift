import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// A latency histogram over `LatencyBuckets` (Prometheus `_bucket`/`_sum`/`_count`). One
/// observation per request or connection takes a short lock: cheap next to the stream it
/// measures.
final class LatencyHistogram: Sendable {
    private struct State {
        var counts = [Int](repeating: 0, count: LatencyBuckets.bounds.count + 1)
        var sum = 0.0
    }

    private let state = NIOLockedValueBox(State())

    func observe(_ seconds: Double) {
        let i = LatencyBuckets.index(of: seconds)
        state.withLockedValue { s in
            s.counts[i] += 1
            s.sum += seconds
        }
    }

    func observe(since start: NIODeadline) {
        observe(Double((NIODeadline.now() - start).nanoseconds) / 1e9)
    }

    var snapshot: HistogramSnapshot {
        state.withLockedValue { HistogramSnapshot(counts: $0.counts, sum: $0.sum) }
    }
}
