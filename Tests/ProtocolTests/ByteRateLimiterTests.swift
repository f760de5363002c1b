import XCTest

@testable import Protocol

final class ByteRateLimiterTests: XCTestCase {
    private let mib = 1 << 20

    func testTheBurstIsAQuarterSecondAtLeast16KiBAndNeverMoreThanASecond() {
        XCTAssertEqual(ByteRateLimiter.burst(rate: 10 * mib), 10 * mib / 4)
        XCTAssertEqual(ByteRateLimiter.burst(rate: 1024), 1024)
        XCTAssertEqual(ByteRateLimiter.burst(rate: 8 << 10), 8 << 10)
        XCTAssertEqual(ByteRateLimiter.burst(rate: 64 << 10), 16 << 10)
        XCTAssertEqual(ByteRateLimiter(rate: 10 * mib, now: 0).quantum, 64 << 10)
        XCTAssertEqual(ByteRateLimiter(rate: 1024, now: 0).quantum, 1024)
        XCTAssertEqual(ByteRateLimiter(rate: 1 << 30, now: 0).quantum, 4 * mib, "1/256 s of a fast rate")
    }

    func testAFullBucketPassesItsBurstThenReservesAQuantumAtATime() {
        var b = ByteRateLimiter(rate: 4 * mib, now: 100)
        XCTAssertEqual(b.take(mib, now: 100), .init(bytes: mib, after: 0))
        // Empty: 64 KiB are reserved, to pass in 64 KiB / 4 MiB/s.
        XCTAssertEqual(b.take(mib, now: 100), .init(bytes: 64 << 10, after: 1.0 / 64))
        // The next asker queues behind that reservation.
        XCTAssertEqual(b.take(mib, now: 100), .init(bytes: 64 << 10, after: 2.0 / 64))
        // A quarter second later 1 MiB flowed in, 128 KiB of it already spent.
        XCTAssertEqual(b.take(2 * mib, now: 100.25), .init(bytes: mib - (128 << 10), after: 0))
        // A long pause fills the bucket to its burst only.
        XCTAssertEqual(b.take(10 * mib, now: 1000).bytes, mib)
    }

    func testASmallWritePassesWholeOrIsReservedWhole() {
        var b = ByteRateLimiter(rate: 4 * mib, now: 0)
        _ = b.take(mib, now: 0)
        // 16 KiB flowed in: a small write passes whole, a large one reserves a quantum.
        XCTAssertEqual(b.take(1000, now: 1.0 / 256), .init(bytes: 1000, after: 0))
        let g = b.take(mib, now: 1.0 / 256)
        XCTAssertEqual(g.bytes, 64 << 10)
        XCTAssertEqual(g.after, Double((64 << 10) - (16 << 10) + 1000) / Double(4 * mib), accuracy: 1e-9)
        XCTAssertEqual(b.take(100, now: 1.0 / 256), .init(bytes: 100, after: g.after + 100.0 / Double(4 * mib)))
    }

    func testTwoHundredMiBAtTenMiBPerSecondTakesTwentySecondsLessTheBurst() {
        // A sender that writes whatever it may, waiting for what it reserved, on a virtual clock.
        var b = ByteRateLimiter(rate: 10 * mib, now: 0)
        var now = 0.0
        var left = 200 * mib
        var wakeups = 0
        while left > 0 {
            let g = b.take(min(left, 256 << 10), now: now)
            left -= g.bytes
            if g.after > 0 { now += g.after; wakeups += 1 }
        }
        XCTAssertEqual(now, 19.75, accuracy: 0.05)
        XCTAssertLessThan(wakeups, 4000, "one wake-up per quantum at most")
    }

    func testSendersSharingABucketTakeTurns() {
        var b = ByteRateLimiter(rate: mib, now: 0)
        _ = b.take(b.burst, now: 0)
        // Three senders ask in turn whenever their reservation is due: each gets a third.
        var due = [0.0, 0.0, 0.0]
        var sent = [0, 0, 0]
        var now = 0.0
        while now < 10 {
            let i = due.indices.min { due[$0] < due[$1] }!
            now = due[i]
            let g = b.take(1 << 20, now: now)
            sent[i] += g.bytes
            due[i] = now + g.after
        }
        for s in sent { XCTAssertEqual(Double(s), Double(10 * mib) / 3, accuracy: Double(128 << 10)) }
    }

    func testBytesGivenBackPassLaterAndAClockGoingBackRefillsNothing() {
        var b = ByteRateLimiter(rate: 1 * mib, now: 10)
        XCTAssertEqual(b.take(b.burst, now: 10).bytes, b.burst)
        b.giveBack(100 << 10)
        XCTAssertEqual(b.take(100 << 10, now: 10), .init(bytes: 100 << 10, after: 0))
        XCTAssertEqual(b.take(1024, now: 5), .init(bytes: 1024, after: 1.0 / 1024), "nothing flowed in")
        b.giveBack(1 << 40)
        XCTAssertEqual(b.tokens, Double(b.burst), "never above the burst")
    }
}
