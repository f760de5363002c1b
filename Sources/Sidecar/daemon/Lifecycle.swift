import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// What a running daemon offers its signal handlers and control socket.
protocol ManagedDaemon: AnyObject, Sendable {
    var lifecycle: Lifecycle { get }
    var logger: Logger { get }
    var notifier: ServiceNotifier { get }
    var drainCoordinator: DrainCoordinator { get }
    /// Re-reads the config file; the future fails with a `ControlError` (422 for an invalid
    /// config) and the old config keeps serving.
    func reload() -> EventLoopFuture<String>
    /// Starts the graceful drain; nil when one is already running.
    func drain(timeout: TimeAmount?) -> EventLoopFuture<DrainReport>?
}

/// When the process exits: after a drain (once the control client that asked for it has its
/// answer), or at once on a second SIGTERM. Signals: SIGHUP reloads, SIGTERM/SIGINT drain.
final class Lifecycle: Sendable {
    private struct State {
        var holds = 0
        var drained = false
        var exited = false
    }

    private let exitPromise: EventLoopPromise<Int32>
    private let state = NIOLockedValueBox(State())
    private let logger: Logger
    /// Set once the process is about to exit: signals are no longer acted on.
    private let signalsStopped = NIOLockedValueBox(false)

    init(loop: EventLoop, logger: Logger) {
        self.exitPromise = loop.makePromise(of: Int32.self)
        self.logger = logger
    }

    /// Start-up can fail after the lifecycle exists (a listener that cannot be bound): the
    /// process then exits with the error, and the promise nobody will wait for is completed
    /// rather than leaked.
    deinit {
        self.exit(1)
    }

    /// Blocks the main thread until the process should exit; returns the exit status.
    func wait() -> Int32 {
        let code = (try? exitPromise.futureResult.wait()) ?? 1
        signalsStopped.withLockedValue { $0 = true }
        return code
    }

    func exit(_ code: Int32) {
        let first = state.withLockedValue { s -> Bool in
            defer { s.exited = true }
            return !s.exited
        }
        if first { exitPromise.succeed(code) }
    }

    /// A control client waits for the drain's answer: exit only after it was written.
    func hold() {
        state.withLockedValue { $0.holds += 1 }
    }

    func release() {
        let now = state.withLockedValue { s -> Bool in
            s.holds -= 1
            return s.drained && s.holds == 0
        }
        if now { exit(0) }
    }

    /// The drain is over. Replies still being written get a moment; then the process exits.
    func drainFinished(on loop: EventLoop) {
        let now = state.withLockedValue { s -> Bool in
            s.drained = true
            return s.holds == 0
        }
        if now {
            exit(0)
        } else {
            loop.scheduleTask(in: .seconds(2)) { self.exit(0) }
        }
    }

    /// Acts on the signals `SignalWaiter.holdSignals` kept pending since the command began.
    func installSignalHandlers(daemon: ManagedDaemon, loop: EventLoop) {
        SignalWaiter.start { [weak daemon, self] sig in
            guard let daemon, !self.signalsStopped.withLockedValue({ $0 }) else { return }
            self.handle(sig, daemon: daemon, loop: loop)
        }
    }

    private func handle(_ sig: Int32, daemon: ManagedDaemon, loop: EventLoop) {
        let name = sig == SIGHUP ? "SIGHUP" : sig == SIGTERM ? "SIGTERM" : "SIGINT"
        if sig == SIGHUP {
            logger.notice("reloading configuration", metadata: ["signal": "\(name)"])
            daemon.reload().whenFailure { [logger] error in
                logger.debug("reload from signal failed", metadata: ["error": "\(error)"])
            }
            return
        }
        if let drain = daemon.drain(timeout: nil) {
            logger.notice("draining", metadata: ["signal": "\(name)"])
            _ = drain
        } else {
            logger.notice("second stop signal while draining: exiting now", metadata: ["signal": "\(name)"])
            exit(0)
        }
    }
}
