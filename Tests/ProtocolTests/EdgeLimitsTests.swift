import Protocol
import XCTest

/// The pure parts of admission, throttling and counted logging, without sockets or clocks.
final class EdgeLimitsTests: XCTestCase {
    private let a = ClientKey(addressBytes: [10, 0, 0, 1])!
    private let b = ClientKey(addressBytes: [10, 0, 0, 2])!

    // MARK: ClientKey

    func testIPv6CountsByPrefixAndMappedIPv4AsIPv4() {
        let one = ClientKey(addressBytes: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + [UInt8](repeating: 7, count: 8))!
        let other = ClientKey(addressBytes: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + [UInt8](repeating: 9, count: 8))!
        XCTAssertEqual(one, other, "one /64")
        XCTAssertEqual(one.description, "2001:db8:0:1::/64")
        let mapped = ClientKey(addressBytes: [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 10, 0, 0, 1])!
        XCTAssertEqual(mapped, a)
        XCTAssertEqual(a.description, "10.0.0.1")
        XCTAssertNotEqual(ClientKey(addressBytes: [0, 0, 0, 0]), ClientKey(addressBytes: [UInt8](repeating: 0, count: 16)))
        XCTAssertNil(ClientKey(addressBytes: [1, 2, 3]))
    }

    // MARK: ConnectionAdmission

    func testAdmissionRefusesPerClientThenTotalAndReleases() {
        var pool = ConnectionAdmission()
        let limits = ConnectionAdmission.Limits(total: 3, perClient: 2)
        XCTAssertEqual(pool.admit(a, limits: limits), .admitted)
        XCTAssertEqual(pool.admit(a, limits: limits), .admitted)
        XCTAssertEqual(pool.admit(a, limits: limits), .refusedPerClient)
        XCTAssertEqual(pool.admit(b, limits: limits), .admitted)
        XCTAssertEqual(pool.admit(b, limits: limits), .refusedTotal)
        XCTAssertEqual(pool.open, 3)
        pool.release(a)
        pool.release(a)
        XCTAssertEqual(pool.clients, 1, "a client with no open connection leaves the table")
        XCTAssertEqual(pool.admit(b, limits: limits), .admitted)
        pool.release(a)  // not open: ignored
        XCTAssertEqual(pool.open, 2)
    }

    // MARK: limits from the descriptor limit

    func testDefaultsFollowTheDescriptorLimitAndKeepAReserve() {
        let l = ConnectionLimits.resolve(LimitsConfig(), openFiles: 20000)
        XCTAssertEqual(l.tunnelPool.total, 1250)
        XCTAssertEqual(l.reserve, 1250 + ConnectionLimits.fixedReserve)
        XCTAssertEqual(l.publicPool.total, 20000 - l.reserve)
        XCTAssertEqual(l.publicPool.perClient, l.publicPool.total / 8)
        XCTAssertEqual(l.tunnelPool.perClient, 64)
        let small = ConnectionLimits.resolve(LimitsConfig(), openFiles: 1024)
        XCTAssertEqual(small.tunnelPool.total, 64)
        XCTAssertEqual(small.publicPool.total, 1024 - 64 - 128)
        XCTAssertEqual(small.publicPool.perClient, 256)
        XCTAssertTrue(small.notes.isEmpty)
    }

    func testConfiguredPublicLimitIsLoweredToLeaveTheReserve() {
        var c = LimitsConfig()
        c.maxConnections = 5000
        c.maxConnectionsPerIP = 9000
        c.maxTunnelConnections = 100
        let l = ConnectionLimits.resolve(c, openFiles: 1024)
        XCTAssertEqual(l.publicPool.total, 1024 - 228)
        XCTAssertEqual(l.publicPool.perClient, l.publicPool.total)
        XCTAssertEqual(l.tunnelPool, .init(total: 100, perClient: 64))
        XCTAssertEqual(l.notes.count, 1)
    }

    // MARK: ClockTable

    func testClockTableEvictsUnreferencedFirstAndStaysBounded() {
        var t = ClockTable<Int, String>(capacity: 3)
        t[1] = "one"
        t[2] = "two"
        t[3] = "three"
        _ = t[1]  // 1 gets a second chance
        t[4] = "four"
        XCTAssertEqual(t.count, 3)
        XCTAssertNotNil(t.peek(1))
        XCTAssertNil(t.peek(2), "the first unreferenced entry goes")
        t.remove(3)
        t[5] = "five"
        XCTAssertEqual(t.count, 3)
        XCTAssertNotNil(t.peek(4))
        for i in 10..<1000 { t[i] = "x" }
        XCTAssertEqual(t.count, 3)
    }

    // MARK: AuthThrottle

    func testThrottleBlocksAfterFailuresDoublingUpToTheCap() {
        var policy = AuthThrottle.Policy()
        policy.failures = 3
        policy.firstBlock = .seconds(10)
        policy.maxBlock = .seconds(30)
        var t = AuthThrottle(policy: policy)
        var now = Duration.seconds(100)
        XCTAssertNil(t.failed(a, now: now))
        XCTAssertNil(t.failed(a, now: now))
        XCTAssertEqual(t.failed(a, now: now), .seconds(10))
        XCTAssertEqual(t.check(a, now: now + .seconds(5)), .blocked(remaining: .seconds(5)))
        XCTAssertEqual(t.check(b, now: now), .allowed, "other addresses are not affected")
        now += .seconds(11)
        XCTAssertEqual(t.check(a, now: now), .allowed)
        XCTAssertNil(t.failed(a, now: now))
        XCTAssertNil(t.failed(a, now: now))
        XCTAssertEqual(t.failed(a, now: now), .seconds(20))
        now += .seconds(21)
        for _ in 0..<2 { _ = t.failed(a, now: now) }
        XCTAssertEqual(t.failed(a, now: now), .seconds(30), "capped")
        // Quiet for the cap after the block: starts over.
        now += .seconds(61)
        for _ in 0..<2 { _ = t.failed(a, now: now) }
        XCTAssertEqual(t.failed(a, now: now), .seconds(10))
    }

    func testThrottleForgetsFailuresOutsideTheWindowAndOnSuccess() {
        var t = AuthThrottle()
        var now = Duration.zero
        for _ in 0..<4 { XCTAssertNil(t.failed(a, now: now)) }
        now += .seconds(61)
        XCTAssertNil(t.failed(a, now: now), "the window started again")
        for _ in 0..<3 { XCTAssertNil(t.failed(a, now: now)) }
        t.succeeded(a)
        XCTAssertEqual(t.trackedAddresses, 0)
        XCTAssertNil(t.failed(a, now: now))
    }

    func testThrottleTableIsBounded() {
        var policy = AuthThrottle.Policy()
        policy.capacity = 16
        var t = AuthThrottle(policy: policy)
        for i in 0..<1000 {
            _ = t.failed(ClientKey(addressBytes: [10, 1, UInt8(i >> 8), UInt8(i & 0xff)])!, now: .zero)
        }
        XCTAssertEqual(t.trackedAddresses, 16)
    }

    // MARK: EventTally

    func testTallyReportsFirstAtOnceThenOneCountPerInterval() {
        var tally = EventTally<String, Int>(interval: .seconds(10))
        XCTAssertEqual(tally.record("401", 1, now: .seconds(0))?.count, 1)
        for i in 2...920 { XCTAssertNil(tally.record("401", i, now: .milliseconds(i))) }
        XCTAssertEqual(tally.record("408", 0, now: .seconds(1))?.count, 1, "kinds are counted apart")
        XCTAssertTrue(tally.due(now: .seconds(9)).isEmpty)
        let due = tally.due(now: .seconds(10))
        XCTAssertEqual(due.count, 1)
        XCTAssertEqual(due.first?.count, 919)
        XCTAssertEqual(due.first?.sample, 920, "the last event's details")
        XCTAssertNil(tally.record("401", 1, now: .seconds(15)), "within the interval of the flush")
        XCTAssertEqual(tally.record("401", 2, now: .seconds(21))?.count, 2, "carried over when no flush ran")
        XCTAssertTrue(tally.due(now: .seconds(40)).isEmpty)
    }

    // MARK: TrimPolicy

    func testTrimAfterALargeFallOnly() {
        var p = TrimPolicy(minimumDrop: 1000)
        XCTAssertFalse(p.observe(connections: 10))
        XCTAssertFalse(p.observe(connections: 10_000))
        XCTAssertFalse(p.observe(connections: 9_000), "not half yet")
        XCTAssertTrue(p.observe(connections: 100))
        XCTAssertFalse(p.observe(connections: 0), "fell by less than the minimum since the last trim")
        XCTAssertFalse(p.observe(connections: 1500))
        XCTAssertTrue(p.observe(connections: 200))
    }
}
