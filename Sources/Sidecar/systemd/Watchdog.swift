import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The service watchdog (`WatchdogSec=`): each event loop stamps a probe time every quarter
/// interval, and a timer off the loops sends `WATCHDOG=1` every half interval if
/// `WatchdogGate` finds every stamp fresh. Nothing runs unless `WATCHDOG_USEC` is set for
/// this process.
final class Watchdog {
    private let stamps: NIOLockedValueBox<[UInt64]>
    private let gate: NIOLockedValueBox<WatchdogGate>
    private let timer: DispatchSourceTimer
    private let probes: [RepeatedTask]

    /// nil when the service manager asked for no watchdog.
    static func start(group: MultiThreadedEventLoopGroup, logger: Logger) -> Watchdog? {
        guard getenv("WATCHDOG_USEC") != nil, let systemd = try? Libsystemd.functions() else { return nil }
        var usec: UInt64 = 0
        guard systemd.watchdogEnabled(0, &usec) > 0, usec > 0 else { return nil }
        return Watchdog(group: group, interval: usec * 1000, notify: systemd.notify, logger: logger)
    }

    private init(
        group: MultiThreadedEventLoopGroup, interval: UInt64,
        notify: @escaping Libsystemd.Notify, logger: Logger
    ) {
        let loops = Array(group.makeIterator())
        let stamps = NIOLockedValueBox([UInt64](repeating: Self.now(), count: loops.count))
        let gate = NIOLockedValueBox(WatchdogGate(maxAgeNanoseconds: interval / 2))
        self.stamps = stamps
        self.gate = gate
        let quarter = TimeAmount.nanoseconds(Int64(interval / 4))
        probes = loops.enumerated().map { index, loop in
            loop.scheduleRepeatedTask(initialDelay: .zero, delay: quarter) { _ in
                let t = Self.now()
                stamps.withLockedValue { $0[index] = t }
            }
        }
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "fastgw.watchdog"))
        timer.schedule(deadline: .now(), repeating: .nanoseconds(Int(interval / 2)))
        timer.setEventHandler {
            let decision = gate.withLockedValue { $0.check(lastRun: stamps.withLockedValue { $0 }, now: Self.now()) }
            switch decision {
            case .ping:
                _ = notify(0, "WATCHDOG=1")
            case .withhold(let stuck, let ages, let newly):
                guard newly else { return }
                logger.critical("event loop stuck: withholding watchdog pings; systemd will restart the service", metadata: [
                    "loops": "\(stuck.map(String.init).joined(separator: ","))",
                    "stalled_ms": "\(ages.map { String($0 / 1_000_000) }.joined(separator: ","))",
                ])
            }
        }
        timer.resume()
        logger.info("watchdog enabled", metadata: ["interval_ms": "\(interval / 1_000_000)", "loops": "\(loops.count)"])
    }

    func stop() {
        timer.cancel()
        probes.forEach { $0.cancel() }
    }

    private static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }
}
