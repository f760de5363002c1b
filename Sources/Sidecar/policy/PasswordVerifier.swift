import CCrypt
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Protocol

/// Checks Basic credentials against an htpasswd entry with the system's libcrypt.
///
/// bcrypt is slow on purpose (tens to hundreds of milliseconds), so a check never runs on an
/// event loop: it goes to a small thread pool, and when `maxPending` checks are already queued
/// or running — or `maxPendingPerClient` for one client, or `maxPendingPerPolicy` for one
/// policy — the answer is `.busy` at once (the caller answers 503) instead of a queue that
/// grows with an attacker's request rate: one client guessing passwords cannot take every
/// slot from the others, and guessing against one site cannot stop logins to another.
/// Passwords over `maxPasswordBytes` are refused without hashing (SHA-512-crypt's work
/// grows with the password's length; bcrypt reads only 72 bytes anyway). Successful checks are remembered for `cacheTTL`
/// under (user, password, entry), so a browser that repeats its credentials on every request
/// costs one hash per TTL; identical checks that arrive while one runs share its result.
/// A failed check is never remembered, and an unknown user is refused without hashing (so
/// random user names cannot make the gateway hash; user names may be told apart by timing).
final class PasswordVerifier: Sendable {
    enum Outcome: Equatable, Sendable {
        case accepted
        case rejected
        /// Too many checks pending: answer 503, not 401 (the credentials were not judged).
        case busy
    }

    struct Limits: Sendable {
        var threads = 2
        /// Checks queued or running at once, over all policies using this verifier.
        var maxPending = 64
        var maxPendingPerClient = 8
        var maxPendingPerPolicy = 32
        var cacheEntries = 1024
        var cacheTTL = TimeAmount.seconds(60)
    }

    private struct State {
        var cache: ClockTable<[UInt8], NIODeadline>
        var inFlight: [[UInt8]: EventLoopFuture<Outcome>] = [:]
        var pending: InFlightLimit<ClientKey>
        var pendingByPolicy: InFlightLimit<String>
        var hashed = 0
        var refusedBusy = 0
    }

    let limits: Limits
    private let pool: NIOThreadPool
    private let state: NIOLockedValueBox<State>
    /// Random per process: cache keys are hashes of passwords, and a key that leaked (a core
    /// dump) must not be a plain SHA-256 one could look up.
    private let salt: [UInt8]

    init(limits: Limits = Limits()) {
        precondition(limits.threads > 0 && limits.cacheEntries > 0)
        self.limits = limits
        pool = NIOThreadPool(numberOfThreads: limits.threads)
        pool.start()
        state = NIOLockedValueBox(State(
            cache: ClockTable(capacity: limits.cacheEntries),
            pending: InFlightLimit(total: limits.maxPending, perKey: limits.maxPendingPerClient),
            pendingByPolicy: InFlightLimit(total: limits.maxPending, perKey: limits.maxPendingPerPolicy)))
        var rng = SystemRandomNumberGenerator()
        salt = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }

    func shutdown() throws {
        try pool.syncShutdownGracefully()
    }

    /// Hashes computed and checks refused as busy, for stats and tests.
    var counts: (hashed: Int, refusedBusy: Int) {
        state.withLockedValue { ($0.hashed, $0.refusedBusy) }
    }

    static let maxPasswordBytes = 256

    /// `client`, `policy`: whose check this is and for which policy, for the per-client and
    /// per-policy caps (nil: only the total applies).
    func verify(
        _ credentials: BasicCredentials, against htpasswd: Htpasswd, client: ClientKey? = nil, policy: String? = nil,
        on loop: EventLoop
    ) -> EventLoopFuture<Outcome> {
        guard credentials.password.utf8.count <= Self.maxPasswordBytes, let entry = htpasswd.entry(for: credentials.user) else {
            return loop.makeSucceededFuture(.rejected)
        }
        let key = cacheKey(credentials, entry)
        enum Step {
            case cached
            case busy
            case join(EventLoopFuture<Outcome>)
            case start(EventLoopPromise<Outcome>)
        }
        let now = NIODeadline.now()
        let step = state.withLockedValue { s -> Step in
            if let expiry = s.cache[key] {
                if expiry > now { return .cached }
                s.cache.remove(key)
            }
            if let running = s.inFlight[key] { return .join(running) }
            guard s.pending.take(client) == nil else {
                s.refusedBusy += 1
                return .busy
            }
            guard s.pendingByPolicy.take(policy) == nil else {
                s.pending.release(client)
                s.refusedBusy += 1
                return .busy
            }
            let promise = loop.makePromise(of: Outcome.self)
            s.inFlight[key] = promise.futureResult
            return .start(promise)
        }
        switch step {
        case .cached:
            return loop.makeSucceededFuture(.accepted)
        case .busy:
            return loop.makeSucceededFuture(.busy)
        case .join(let running):
            return running.hop(to: loop)
        case .start(let promise):
            let password = credentials.password, hash = entry.hash, ttl = limits.cacheTTL
            pool.submit { [state] work in
                let outcome: Outcome
                if case .active = work {
                    outcome = CryptCheck.matches(password: password, hash: hash) ? .accepted : .rejected
                } else {
                    outcome = .busy
                }
                state.withLockedValue { s in
                    s.pending.release(client)
                    s.pendingByPolicy.release(policy)
                    s.inFlight[key] = nil
                    if case .active = work { s.hashed += 1 }
                    if outcome == .accepted { s.cache[key] = .now() + ttl }
                }
                promise.succeed(outcome)
            }
            return promise.futureResult
        }
    }

    private func cacheKey(_ credentials: BasicCredentials, _ entry: Htpasswd.Entry) -> [UInt8] {
        var input = salt
        input.append(contentsOf: credentials.user.utf8)
        input.append(0)
        input.append(contentsOf: entry.hash.utf8)
        input.append(0)
        input.append(contentsOf: credentials.password.utf8)
        return SHA256.hash(input)
    }
}

/// One crypt(3) check with its own `crypt_data`, so any number of threads can run it.
enum CryptCheck {
    static func matches(password: String, hash: String) -> Bool {
        // A NUL would end the C string early and check a shorter password.
        guard !password.utf8.contains(0), !hash.utf8.contains(0) else { return false }
        let size = MemoryLayout<crypt_data>.size
        let data = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: MemoryLayout<crypt_data>.alignment)
        data.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        defer {
            // The scratch space held password-derived state.
            data.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            data.deallocate()
        }
        let result: [UInt8]? = crypt_rn(password, hash, data.assumingMemoryBound(to: crypt_data.self), Int32(size))
            .map { Array(UnsafeRawBufferPointer(start: $0, count: strlen($0))) }
        guard let result else { return false }
        return constantTimeEqual(result, Array(hash.utf8))
    }

    /// Compares without stopping at the first difference; the lengths are not secret (fixed per format).
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
