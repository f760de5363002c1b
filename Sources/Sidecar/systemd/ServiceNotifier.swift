import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Tells the service manager about the daemon's state (sd_notify, DESIGN §5): READY once
/// serving, RELOADING around a reload, STOPPING when draining, and a STATUS line kept
/// current. Every call is a no-op when `NOTIFY_SOCKET` is not set.
final class ServiceNotifier: Sendable {
    /// nil when `NOTIFY_SOCKET` is not set (or libsystemd is missing: see `Libsystemd.checkEnvironment`).
    private let notify: Libsystemd.Notify?
    private var enabled: Bool { notify != nil }
    private let lastStatus = NIOLockedValueBox("")
    private let summary: @Sendable () -> String

    /// `summary` gives the one-line STATUS text; it is sent again whenever it changes.
    init(summary: @escaping @Sendable () -> String) {
        self.notify = getenv("NOTIFY_SOCKET") != nil ? (try? Libsystemd.functions())?.notify : nil
        self.summary = summary
    }

    func ready() {
        send(["READY=1", "STATUS=\(currentStatus())"])
    }

    /// RELOADING=1 and MONOTONIC_USEC in one datagram, as Type=notify-reload expects.
    func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send(["RELOADING=1", "MONOTONIC_USEC=\(usec)", "STATUS=reloading configuration"])
    }

    func stopping() {
        send(["STOPPING=1", "STATUS=\(currentStatus())"])
    }

    /// Sends STATUS= if the summary changed since the last one sent.
    func refreshStatus() {
        guard enabled else { return }
        let text = summary()
        let changed = lastStatus.withLockedValue { last -> Bool in
            defer { last = text }
            return last != text
        }
        if changed { send(["STATUS=\(text)"]) }
    }

    /// Keeps STATUS= current while the daemon runs.
    func startStatusUpdates(on loop: EventLoop, every interval: TimeAmount = .seconds(2)) {
        guard enabled else { return }
        loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in self.refreshStatus() }
    }

    private func currentStatus() -> String {
        let text = summary()
        lastStatus.withLockedValue { $0 = text }
        return text
    }

    private func send(_ fields: [String]) {
        guard let notify else { return }
        _ = notify(0, fields.joined(separator: "\n"))
    }
}
