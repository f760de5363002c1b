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
    }

    func testAFullBucketPassesItsBurstThenPartOfAWriteAndSaysWhenTheRestMay() {
        var b = ByteRateLimiter(rate: 4 * mib, now: 100)
        XCTAssertEqual(b.take(mib, now: 100), .init(bytes: mib, wait: 0))
        // Empty: nothing passes, and the next 64 KiB are due in 64 KiB / 4 MiB/s.
        XCTAssertEqual(b.take(mib, now: 100), .init(bytes: 0, wait: 1.0 / 64))
        // A quarter second later 1 MiB flowed in: 600 KiB pass, the rest waits a quantum's time.
        let g = b.take(mib + (400 << 10), now: 100.25)
        XCTAssertEqual(g.bytes, mib)
        XCTAssertEqual(g.wait, 1.0 / 64, accuracy: 1e-9)
        // A long pause fills the bucket to its burst only.
        XCTAssertEqual(b.take(10 * mib, now: 1000).bytes, mib)
    }

    func testLessThanAQuantumIsNotGrantedUnlessItIsAllThatIsAsked() {
        var b = ByteRateLimiter(rate: 4 * mib, now: 0)
        _ = b.take(mib, now: 0)
        // 16 KiB flowed in: a small write passes whole, a large one waits for a quantum.
        XCTAssertEqual(b.take(1000, now: 1.0 / 256), .init(bytes: 1000, wait: 0))
        let g = b.take(mib, now: 1.0 / 256)
        XCTAssertEqual(g.bytes, 0)
        XCTAssertEqual(g.wait, Double((64 << 10) - (16 << 10) + 1000) / Double(4 * mib), accuracy: 1e-9)
    }

    func testTwoHundredMiBAtTenMiBPerSecondTakesTwentySecondsLessTheBurst() {
        // A sender that writes 64 KiB whenever the bucket says it may, on a virtual clock.
        var b = ByteRateLimiter(rate: 10 * mib, now: 0)
        var now = 0.0
        var left = 200 * mib
        var wakeups = 0
        while left > 0 {
            let g = b.take(min(left, 256 << 10), now: now)
            left -= g.bytes
            if g.wait > 0 { now += g.wait; wakeups += 1 }
        }
        XCTAssertEqual(now, 19.75, accuracy: 0.05)
        XCTAssertLessThan(wakeups, 4000, "one wake-up per quantum at most")
    }

    func testBytesGivenBackPassLaterAndAClockGoingBackRefillsNothing() {
        var b = ByteRateLimiter(rate: 1 * mib, now: 10)
        XCTAssertEqual(b.take(b.burst, now: 10).bytes, b.burst)
        b.giveBack(100 << 10)
        XCTAssertEqual(b.take(100 << 10, now: 10).bytes, 100 << 10)
        XCTAssertEqual(b.take(1, now: 5).bytes, 0)
        b.giveBack(1 << 40)
        XCTAssertEqual(b.tokens, Double(b.burst), "never above the burst")
    }
}
