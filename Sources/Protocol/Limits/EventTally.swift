/// Counts repeated events so that logging them costs at most one record per kind per
/// interval, whatever the rate (DESIGN §9: no peer can turn the log into an amplifier).
/// The first event of a kind after a quiet interval is reported at once (count 1); the
/// ones after it are only counted, and `due` hands their total over once the interval has
/// passed. `Sample` is what the report shows of the last event (a client, a status).
/// Time is injected: `now` is any monotonic clock's reading as a `Duration`.
public struct EventTally<Kind: Hashable, Sample> {
    public struct Report {
        public let kind: Kind
        /// Events since the previous report of this kind.
        public let count: Int
        /// The last of them.
        public let sample: Sample
    }

    fileprivate struct Entry {
        var lastReport: Duration
        var unreported = 0
        var sample: Sample
    }

    public let interval: Duration
    /// One entry per kind ever seen: kinds are a fixed set in the code, so this is bounded.
    private var entries: [Kind: Entry] = [:]

    public init(interval: Duration) {
        self.interval = interval
    }

    /// Records one event; returns a report when it should be logged now.
    public mutating func record(_ kind: Kind, _ sample: Sample, now: Duration) -> Report? {
        guard var e = entries[kind], now - e.lastReport < interval else {
            let earlier = entries[kind]?.unreported ?? 0
            entries[kind] = Entry(lastReport: now, sample: sample)
            return Report(kind: kind, count: earlier + 1, sample: sample)
        }
        e.unreported += 1
        e.sample = sample
        entries[kind] = e
        return nil
    }

    /// Reports for kinds whose interval has passed with events still unreported; call it
    /// periodically so a burst's tail is not held until the next event.
    public mutating func due(now: Duration) -> [Report] {
        var out: [Report] = []
        for (kind, e) in entries where e.unreported > 0 && now - e.lastReport >= interval {
            out.append(Report(kind: kind, count: e.unreported, sample: e.sample))
            entries[kind] = Entry(lastReport: now, sample: e.sample)
        }
        return out
    }
}

extension EventTally: Sendable where Kind: Sendable, Sample: Sendable {}
extension EventTally.Report: Sendable where Kind: Sendable, Sample: Sendable {}
extension EventTally.Entry: Sendable where Kind: Sendable, Sample: Sendable {}
