#if canImport(Glibc)
import Glibc
#endif

/// The stop and reload signals, taken by one thread that waits for them (`sigwait`) rather
/// than by handlers. They are blocked in every thread from the start of a daemon command
/// (`holdSignals`, before any thread exists), so a signal that arrives before the daemon
/// listens for it stays pending instead of being lost: dispatch signal sources are armed
/// asynchronously, and a SIGTERM sent right after "ready" was at times ignored.
enum SignalWaiter {
    static let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP]

    static var set: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for sig in handled { sigaddset(&set, sig) }
        return set
    }

    /// Blocks the handled signals in the calling thread and every thread created after it.
    static func holdSignals() {
        var set = Self.set
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    private final class Handler {
        let handle: (Int32) -> Void
        init(_ handle: @escaping (Int32) -> Void) { self.handle = handle }
    }

    /// Starts the waiting thread; `handle` runs on it for every signal, in order.
    static func start(_ handle: @escaping @Sendable (Int32) -> Void) {
        let arg = Unmanaged.passRetained(Handler(handle)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let handler = Unmanaged<Handler>.fromOpaque(raw!).takeRetainedValue()
            var set = SignalWaiter.set
            while true {
                var sig: Int32 = 0
                if sigwait(&set, &sig) == 0 { handler.handle(sig) }
            }
        }, arg)
        precondition(rc == 0, "cannot start the signal thread: \(rc)")
        pthread_detach(thread)
    }
}
