import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Protocol

/// The agent's name resolutions for network services' destinations and udp upstreams, bounded
/// (`ResolutionGate`): 32 lookups at most in flight on a pool of 4 threads of its own (never
/// the shared NIO pool, whose queue has no bound), each answered within `deadline` or failed
/// as unresolvable, answers cached for 10 s in 256 entries. Over the cap a resolution is
/// refused at once; the stream's refusal reports it (502, SOCKS5 "connection refused").
final class BoundedResolver: Sendable {
    static let limits = ResolutionGate<[SocketAddress]>.Limits()
    static let deadline = TimeAmount.seconds(5)
    static let threads = 4
    /// The process's resolver (its threads start on first use).
    static let shared = BoundedResolver(lookup: NetworkTarget.lookup)

    private let pool: NIOThreadPool
    private let gate = NIOLockedValueBox(ResolutionGate<[SocketAddress]>(limits: BoundedResolver.limits))
    private let lookup: @Sendable (HostPort) throws -> [SocketAddress]
    private let deadline: TimeAmount

    /// `lookup` blocks (getaddrinfo); tests inject a slow one.
    init(deadline: TimeAmount = BoundedResolver.deadline, lookup: @escaping @Sendable (HostPort) throws -> [SocketAddress]) {
        self.lookup = lookup
        self.deadline = deadline
        pool = NIOThreadPool(numberOfThreads: Self.threads)
        pool.start()
    }

    var inFlight: Int { gate.withLockedValue { $0.inFlight } }

    func shutdown() throws {
        try pool.syncShutdownGracefully()
    }

    /// The addresses of `target` (cached, or looked up on the pool); failed as
    /// `NetworkTarget.Refusal.unresolvable` when busy or late, or with what `lookup` threw.
    func resolve(_ target: HostPort, on loop: EventLoop) -> EventLoopFuture<[SocketAddress]> {
        let name = "\(target)"
        let now = Self.now
        switch gate.withLockedValue({ $0.admit(name, now: now) }) {
        case .cached(let addresses):
            return loop.makeSucceededFuture(addresses)
        case .busy:
            return loop.makeFailedFuture(NetworkTarget.Refusal.unresolvable(
                "cannot resolve \(target.host): \(Self.limits.maxInFlight) resolutions already in flight"))
        case .lookUp:
            break
        }
        let promise = loop.makePromise(of: [SocketAddress].self)
        let deadline = self.deadline
        let timer = loop.scheduleTask(in: deadline) {
            promise.fail(NetworkTarget.Refusal.unresolvable("cannot resolve \(target.host): no answer within \(deadline)"))
        }
        let (gate, lookup) = (self.gate, self.lookup)
        pool.runIfActive(eventLoop: loop) { () throws -> [SocketAddress] in
            // The slot is given back when the lookup returns, not at the deadline: the
            // thread is busy until then.
            do {
                let addresses = try lookup(target)
                gate.withLockedValue { $0.finished(name, value: addresses, now: Self.now) }
                return addresses
            } catch {
                gate.withLockedValue { $0.finished(name, value: nil, now: Self.now) }
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
