import Foundation
import NIOCore
import NIOPosix
import Protocol
import Synchronization
import XCTest

@testable import Sidecar

/// A resolver whose lookups hang (a DNS server that never answers) still answers every
/// caller within its deadline, refuses beyond its in-flight cap at once, and serves repeated
/// names from its cache.
final class BoundedResolverTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUp() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() {
        try? group.syncShutdownGracefully()
    }

    private func message(_ error: Error) -> String {
        if case .unresolvable(let why)? = error as? NetworkTarget.Refusal { return why }
        return "\(error)"
    }

    func testHangingLookupsAreCappedAndTimedOut() throws {
        let release = DispatchSemaphore(value: 0)
        let resolver = BoundedResolver(deadline: .milliseconds(200)) { target in
            if target.host.hasPrefix("slow") { release.wait() }
            return [try SocketAddress(ipAddress: "192.0.2.1", port: target.port)]
        }
        defer {
            for _ in 0..<BoundedResolver.limits.maxInFlight { release.signal() }
            try? resolver.shutdown()
        }
        let loop = group.next()
        let cap = BoundedResolver.limits.maxInFlight
        let slow = (0..<cap).map { resolver.resolve(HostPort(host: "slow\($0).example", port: 53), on: loop) }
        // Over the cap: refused at once, without a thread or a queue entry.
        let over = resolver.resolve(HostPort(host: "slow-extra.example", port: 53), on: loop)
        XCTAssertThrowsError(try over.wait()) { XCTAssertTrue(self.message($0).contains("already in flight"), self.message($0)) }
        // The hanging ones fail at the deadline, but hold their slots until they return.
        let started = Date()
        for f in slow {
            XCTAssertThrowsError(try f.wait()) { XCTAssertTrue(self.message($0).contains("no answer within"), self.message($0)) }
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
        XCTAssertEqual(resolver.inFlight, cap)
        for _ in 0..<cap { release.signal() }
        let deadline = Date() + 5
        while resolver.inFlight > 0 && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(resolver.inFlight, 0)
        XCTAssertEqual(try resolver.resolve(HostPort(host: "fast.example", port: 53), on: loop).wait().count, 1)
    }

    /// Visitor names that hang neither hold up a udp upstream's name (its own pool and cap)
    /// nor run once their caller gave up while queued; a failure is not looked up again at once.
    func testVisitorNamesCannotStarveConfiguredOnesAndLateOnesDoNotRun() throws {
        let release = DispatchSemaphore(value: 0)
        let calls = Mutex(0)
        let resolver = BoundedResolver(deadline: .milliseconds(300)) { target in
            calls.withLock { $0 += 1 }
            if target.host.hasPrefix("slow") { release.wait() }
            if target.host.hasPrefix("bad") { throw NetworkTarget.Refusal.unresolvable("no such name") }
            return [try SocketAddress(ipAddress: "192.0.2.1", port: target.port)]
        }
        defer {
            for _ in 0..<BoundedResolver.limits.maxInFlight { release.signal() }
            try? resolver.shutdown()
        }
        let loop = group.next()
        let slow = (0..<BoundedResolver.limits.maxInFlight).map { resolver.resolve(HostPort(host: "slow\($0).example", port: 53), on: loop) }
        XCTAssertEqual(try resolver.resolve(HostPort(host: "upstream.internal", port: 53), from: .configured, on: loop).wait().count, 1)
        for f in slow { XCTAssertThrowsError(try f.wait()) }
        // Only the pool's threads ran getaddrinfo; the queued ones were dropped when released.
        for _ in 0..<BoundedResolver.threads { release.signal() }
        let deadline = Date() + 5
        while resolver.inFlight > 0 && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(resolver.inFlight, 0)
        XCTAssertEqual(calls.withLock { $0 }, BoundedResolver.threads + 1)
        XCTAssertThrowsError(try resolver.resolve(HostPort(host: "bad.example", port: 53), on: loop).wait())
        XCTAssertThrowsError(try resolver.resolve(HostPort(host: "bad.example", port: 53), on: loop).wait()) {
            XCTAssertTrue(self.message($0).contains("failed less than"), self.message($0))
        }
        XCTAssertEqual(calls.withLock { $0 }, BoundedResolver.threads + 2)
    }

    func testAnswersAreCached() throws {
        let calls = Mutex(0)
        let resolver = BoundedResolver { target in
            calls.withLock { $0 += 1 }
            return [try SocketAddress(ipAddress: "192.0.2.1", port: target.port)]
        }
        defer { try? resolver.shutdown() }
        let loop = group.next()
        for _ in 0..<5 { _ = try resolver.resolve(HostPort(host: "db.internal", port: 5432), on: loop).wait() }
        XCTAssertEqual(calls.withLock { $0 }, 1)
    }
}

/// The process-wide budget of partial capsules: takes only what fits, gives back exactly.
final class MemoryBudgetTests: XCTestCase {
    func testTakesWithinTheLimitOnly() {
        let budget = MemoryBudget(limit: 100)
        XCTAssertTrue(budget.take(60))
        XCTAssertFalse(budget.take(41))
        XCTAssertTrue(budget.take(40))
        XCTAssertFalse(budget.take(1))
        budget.give(60)
        XCTAssertEqual(budget.inUse, 40)
        XCTAssertTrue(budget.take(60))
        XCTAssertEqual(DatagramStreamLink.partialCapsules.limit, 32 << 20)
    }
}
