import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import Protocol

#if canImport(Glibc)
import Glibc
#endif

/// Hands freed heap back to the kernel after a flood (`TrimPolicy`): glibc keeps what a
/// burst of connections allocated below the top of its heaps, so the RSS of the peak would
/// otherwise stay. `malloc_trim` walks every arena, so it runs off the event loops.
/// (`dlsym` with a null handle is RTLD_DEFAULT: the process's global symbols.)
final class MemoryTrimmer: Sendable {
    static let checkInterval: TimeAmount = .seconds(5)

    private let policy = NIOLockedValueBox(TrimPolicy())
    private let queue = DispatchQueue(label: "fastgw.malloc-trim")
    private let connections: @Sendable () -> Int
    private let trimmed: Counter

    init(trimmed: Counter, connections: @escaping @Sendable () -> Int) {
        self.trimmed = trimmed
        self.connections = connections
    }

    func start(on loop: EventLoop) {
        loop.scheduleRepeatedTask(initialDelay: Self.checkInterval, delay: Self.checkInterval) { [self] _ in check() }
    }

    private func check() {
        let open = connections()
        guard policy.withLockedValue({ $0.observe(connections: open) }) else { return }
        guard let trim = Self.mallocTrim else { return }
        queue.async { [trimmed] in
            _ = trim(0)
            trimmed.add()
        }
    }

    /// glibc's `malloc_trim`, looked up at run time: Swift's Glibc module does not declare
    /// it, and other C libraries (musl) do not have it.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()
}
