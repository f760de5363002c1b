import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Protocol

/// The agent's name resolutions for network services' destinations (names visitors send)
/// and udp upstreams (names the operator configured), bounded (`ResolutionGate`): each source
/// has its own thread pool (never the shared NIO pool, whose queue has no bound) and its own
/// in-flight cap (32 visitor names on 4 threads, 8 configured names on 2), so visitors cannot
/// starve udp upstream resolution. Each caller is answered within `deadline` or failed as
/// unresolvable; a lookup still queued at its deadline is dropped without running. Answers
/// are cached for 10 s, failures for 5 s, in 256 entries. Over the cap a resolution is refused
/// at once; the stream's refusal reports it (502, SOCKS5 "connection refused").
final class BoundedResolver: Sendable {
    typealias Source = ResolutionGate<[SocketAddress]>.Source
    static let limits = ResolutionGate<[SocketAddress]>.Limits()
    static let deadline = TimeAmount.seconds(5)
    static let threads = 4
    static let configuredThreads = 2
    /// The process's resolver (its threads start on first use).
    static let shared = BoundedResolver(lookup: NetworkTarget.lookup)

    private let pool: NIOThreadPool
    private let configuredPool: NIOThreadPool
    private let gate = NIOLockedValueBox(ResolutionGate<[SocketAddress]>(limits: BoundedResolver.limits))
    private let lookup: @Sendable (HostPort) throws -> [SocketAddress]
    private let deadline: TimeAmount

    /// `lookup` blocks (getaddrinfo); tests inject a slow one.
    init(deadline: TimeAmount = BoundedResolver.deadline, lookup: @escaping @Sendable (HostPort) throws -> [SocketAddress]) {
        self.lookup = lookup
        self.deadline = deadline
        pool = NIOThreadPool(numberOfThreads: Self.threads)
        configuredPool = NIOThreadPool(numberOfThreads: Self.configuredThreads)
        pool.start()
        configuredPool.start()
    }

    var inFlight: Int { gate.withLockedValue { $0.inFlight } }
    var configuredInFlight: Int { gate.withLockedValue { $0.configuredInFlight } }

    func shutdown() throws {
        try pool.syncShutdownGracefully()
        try configuredPool.syncShutdownGracefully()
    }

    /// The addresses of `target` (cached, or looked up on the source's pool); failed as
    /// `NetworkTarget.Refusal.unresolvable` when busy, late or failed moments ago, or with
    /// what `lookup` threw.
    func resolve(_ target: HostPort, from source: Source = .requested, on loop: EventLoop) -> EventLoopFuture<[SocketAddress]> {
        let name = "\(target)"
        switch gate.withLockedValue({ $0.admit(name, from: source, now: Self.now) }) {
        case .cached(let addresses):
            return loop.makeSucceededFuture(addresses)
        case .failedRecently:
            return loop.makeFailedFuture(NetworkTarget.Refusal.unresolvable(
                "cannot resolve \(target.host): it failed less than \(Int(Self.limits.failureSeconds)) s ago"))
        case .busy:
            return loop.makeFailedFuture(NetworkTarget.Refusal.unresolvable(
                "cannot resolve \(target.host): \(Self.limits.cap(source)) resolutions already in flight"))
        case .lookUp:
            break
        }
        let promise = loop.makePromise(of: [SocketAddress].self)
        let deadline = self.deadline
        let due = NIODeadline.now() + deadline
        let late = NetworkTarget.Refusal.unresolvable("cannot resolve \(target.host): no answer within \(deadline)")
        let timer = loop.scheduleTask(in: deadline) { promise.fail(late) }
        let (gate, lookup) = (self.gate, self.lookup)
        (source == .configured ? configuredPool : pool).runIfActive(eventLoop: loop) { () throws -> [SocketAddress] in
            // Still queued at the deadline: the caller was answered, the thread is not spent.
            guard NIODeadline.now() < due else {
                gate.withLockedValue { $0.abandoned(from: source) }
                throw late
            }
            // The slot is given back when the lookup returns, not at the deadline: the
            // thread is busy until then.
            do {
                let addresses = try lookup(target)
                gate.withLockedValue { $0.finished(name, from: source, value: addresses, now: Self.now) }
                return addresses
            } catch {
                gate.withLockedValue { $0.finished(name, from: source, value: nil, now: Self.now) }
                throw error
            }
        }.whenComplete { result in
            timer.cancel()
            // After the deadline the promise is already failed; a second completion is ignored.
            switch result {
            case .success(let a): promise.succeed(a)
            case .failure(let e): promise.fail(e)
            }
        }
        return promise.futureResult
    }

    private static var now: Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }
}
