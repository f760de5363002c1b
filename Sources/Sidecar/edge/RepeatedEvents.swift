import Logging
import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// `EventTally` behind a lock, writing its reports to the log: the first event of a kind is
/// logged at once with its details, later ones within `interval` only counted, and their
/// total logged by a periodic flush ("count=N" with the last one's details).
final class RepeatedEvents: Sendable {
    static let interval: Duration = .seconds(10)

    private let tally = NIOLockedValueBox(EventTally<EdgeEvent, Logger.Metadata>(interval: RepeatedEvents.interval))
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func record(_ event: EdgeEvent, _ metadata: Logger.Metadata) {
        let now = Self.now
        guard let report = tally.withLockedValue({ $0.record(event, metadata, now: now) }) else { return }
        log(report)
    }

    /// Logs the counts whose interval has passed.
    func flush() {
        let now = Self.now
        for report in tally.withLockedValue({ $0.due(now: now) }) { log(report) }
    }

    /// Flushes every second on `loop` until the loop shuts down.
    func startFlushing(on loop: EventLoop) {
        loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] _ in flush() }
    }

    private func log(_ report: EventTally<EdgeEvent, Logger.Metadata>.Report) {
        var metadata = report.sample
        metadata["count"] = "\(report.count)"
        if report.count > 1 {
            metadata["interval_s"] = "\(Self.interval.components.seconds)"
        }
        if let key = report.kind.keyEvent { metadata = .event(key, metadata) }
        logger.log(level: report.kind.level, "\(report.kind.message)", metadata: metadata)
    }

    static var now: Duration { .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds)) }
}
