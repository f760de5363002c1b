import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// What was left when a drain ended.
struct DrainReport: Sendable {
    /// Work still in flight at the end: zero when everything finished before the deadline.
    var left: Int
    var what: String
    var elapsed: TimeAmount

    var text: String {
        let ms = elapsed.nanoseconds / 1_000_000
        return left == 0
            ? "drained: all \(what) finished in \(ms) ms; exiting\n"
            : "drain deadline reached after \(ms) ms with \(left) \(what) still open; exiting\n"
    }

    var json: JSON {
        .object(["drained": .bool(left == 0), "left": .number(Double(left)), "what": .string(what),
                 "elapsed_ms": .number(Double(elapsed.nanoseconds / 1_000_000))])
    }
}

/// Runs a drain once: `begin` stops new work and says when that has settled (work accepted
/// just before the stop is counted by then), then `remaining` is polled until it reaches zero
/// or the deadline passes, then `end` runs. A second request gets nil (409).
final class DrainCoordinator: Sendable {
    private enum State {
        case idle
        case running(EventLoopPromise<DrainReport>)
        case over
    }

    private let state = NIOLockedValueBox(State.idle)

    var isDraining: Bool {
        state.withLockedValue { s in
            if case .idle = s { return false }
            return true
        }
    }

    /// The process is exiting before the drain finished (a second SIGTERM): whoever waits
    /// for the drain gets an error instead of an answer that would never come.
    func abandon() {
        let pending = state.withLockedValue { s -> EventLoopPromise<DrainReport>? in
            guard case .running(let p) = s else { return nil }
            s = .over
            return p
        }
        pending?.fail(ControlError.internal("exiting before the drain finished"))
    }

    private func finish(_ report: DrainReport) {
        let pending = state.withLockedValue { s -> EventLoopPromise<DrainReport>? in
            guard case .running(let p) = s else { return nil }
            s = .over
            return p
        }
        pending?.succeed(report)
    }

    func start(
        timeout: TimeAmount, on loop: EventLoop, what: String,
        begin: @Sendable () -> EventLoopFuture<Void>,
        remaining: @escaping @Sendable () -> Int,
        end: @escaping @Sendable (DrainReport) -> Void
    ) -> EventLoopFuture<DrainReport>? {
        let created = state.withLockedValue { s -> EventLoopPromise<DrainReport>? in
            guard case .idle = s else { return nil }
            let promise = loop.makePromise(of: DrainReport.self)
            s = .running(promise)
            return promise
        }
        guard let promise = created else { return nil }
        let t0 = NIODeadline.now()
        let deadline = t0 + timeout
        begin().hop(to: loop).whenComplete { _ in
            loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(50)) { task in
                let left = remaining()
                let now = NIODeadline.now()
                guard left == 0 || now >= deadline else { return }
                task.cancel()
                let report = DrainReport(left: left, what: what, elapsed: now - t0)
                end(report)
                self.finish(report)
            }
        }
        return promise.futureResult
    }
}
