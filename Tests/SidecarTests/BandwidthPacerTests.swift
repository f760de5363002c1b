import NIOCore
import NIOEmbedded
import Protocol
import XCTest

@testable import Sidecar

/// The pacing of `[[policy]] bandwidth` on a virtual clock: bytes held in order with the events
/// after them, timers that pass them on at the rate, gates shared by streams, and the bounded
/// table of gates.
final class BandwidthPacerTests: XCTestCase {
    private let kib = 1 << 10
    // 64 KiB a second: a 16 KiB burst and quantum.
    private let rate = 64 << 10

    private func caps(_ tables: [BandwidthGates], service: String = "svc") -> BandwidthCaps {
        BandwidthCaps(tables: tables, service: service)
    }

    private func gates(capacity: Int = BandwidthGates.capacity) -> BandwidthGates {
        BandwidthGates(rate: rate, capacity: capacity, clock: { 0 })
    }

    func testBytesPassAtTheRateInOrderWithTheEventsAfterThem() {
        let loop = EmbeddedEventLoop()
        let table = gates()
        let pacer = caps([table]).pacer(.download, on: loop)
        var passed: [Int] = []
        var log: [String] = []
        pacer.sink = { passed.append($0.readableBytes) }
        pacer.onHold = { log.append("hold") }
        pacer.onRelease = { log.append("release") }
        pacer.send(ByteBuffer(repeating: 1, count: 100 * kib))
        XCTAssertEqual(passed, [16 * kib], "the burst passes at once")
        XCTAssertTrue(pacer.isHolding)
        // More while holding: queued behind, and the source is told again to pause.
        pacer.send(ByteBuffer(repeating: 2, count: 4 * kib))
        pacer.after { log.append("end") }
        XCTAssertEqual(log, ["hold", "hold"])
        loop.advanceTime(by: .milliseconds(250))
        XCTAssertEqual(passed.reduce(0, +), 32 * kib)
        loop.advanceTime(by: .milliseconds(1000))
        XCTAssertEqual(passed.reduce(0, +), 96 * kib)
        // The last 8 KiB of both buffers are reserved at once: one wait of 1/8 s.
        loop.advanceTime(by: .milliseconds(124))
        XCTAssertEqual(passed.reduce(0, +), 96 * kib)
        XCTAssertEqual(log, ["hold", "hold"], "the end waits for the bytes before it")
        loop.advanceTime(by: .milliseconds(2))
        XCTAssertEqual(passed.reduce(0, +), 104 * kib)
        XCTAssertEqual(passed.suffix(2), [4 * kib, 4 * kib])
        XCTAssertEqual(log, ["hold", "hold", "end", "release"])
        XCTAssertFalse(pacer.isHolding)
        XCTAssertEqual(table.throttled.value, 1, "one wait, however many bytes joined it")
        XCTAssertEqual(table.delayedBytes.value, 88 * kib)
    }

    func testStreamsOfOneServiceShareItsRateAndAnotherServiceHasItsOwn() {
        let loop = EmbeddedEventLoop()
        let table = gates()
        var sent = [0, 0, 0]
        let pacers = [caps([table]), caps([table]), caps([table], service: "other")].enumerated().map { i, c in
            let p = c.pacer(.upload, on: loop)
            p.sink = { sent[i] += $0.readableBytes }
            return p
        }
        for p in pacers { p.send(ByteBuffer(repeating: 0, count: 1 << 20)) }
        loop.advanceTime(by: .seconds(4))
        // svc: 16 KiB burst + 4 s at 64 KiB/s between its two streams; other: the same alone.
        XCTAssertEqual(Double(sent[0] + sent[1]), Double(16 * kib + 4 * rate), accuracy: Double(16 * kib))
        XCTAssertEqual(Double(sent[2]), Double(16 * kib + 4 * rate), accuracy: Double(16 * kib))
        XCTAssertGreaterThan(min(sent[0], sent[1]), rate, "neither stream of the shared gate starves")
        // The upload and download directions are counted apart.
        let down = caps([table]).pacer(.download, on: loop)
        var got = 0
        down.sink = { got += $0.readableBytes }
        down.send(ByteBuffer(repeating: 0, count: 16 * kib))
        XCTAssertEqual(got, 16 * kib)
    }

    func testTheSmallestOfTwoCapsWinsAndStopDropsWhatIsHeld() {
        let loop = EmbeddedEventLoop()
        let fast = BandwidthGates(rate: 1 << 20, clock: { 0 })
        let pacer = caps([fast, gates()]).pacer(.upload, on: loop)
        var sent = 0
        var ended = false
        pacer.sink = { sent += $0.readableBytes }
        pacer.send(ByteBuffer(repeating: 0, count: 1 << 20))
        pacer.after { ended = true }
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(Double(sent), Double(16 * kib + rate), accuracy: Double(16 * kib))
        pacer.stop()
        XCTAssertFalse(pacer.isHolding)
        loop.advanceTime(by: .seconds(60))
        XCTAssertFalse(ended, "an aborted stream's end is dropped with its bytes")
        pacer.after { ended = true }
        XCTAssertTrue(ended)
    }

    func testTheTableIsBoundedAndServicesBeyondItShareOneGate() {
        let table = gates(capacity: 2)
        let a = table.acquire(service: "a")
        let b = table.acquire(service: "b")
        // Full, both in use: a third service gets the shared overflow gate, as does a fourth.
        let c = table.acquire(service: "c")
        XCTAssertTrue(c === table.acquire(service: "d"))
        XCTAssertFalse(c === a || c === b)
        XCTAssertEqual(table.services, 2)
        // Once "a" has no stream, a new service takes its place; "a" comes back with a new gate.
        table.release(service: "a", gate: a)
        let e = table.acquire(service: "e")
        XCTAssertFalse(e === c)
        XCTAssertEqual(table.services, 2)
        XCTAssertTrue(table.acquire(service: "b") === b)
        // Releasing the overflow gate changes nothing.
        table.release(service: "c", gate: c)
        XCTAssertEqual(table.services, 2)
    }

    func testAPacerReleasesItsGatesWhenItGoes() {
        let loop = EmbeddedEventLoop()
        let table = gates(capacity: 1)
        var pacer: BandwidthPacer? = caps([table]).pacer(.upload, on: loop)
        XCTAssertNotNil(pacer)
        let overflow = table.acquire(service: "other")
        XCTAssertTrue(overflow === table.acquire(service: "third"), "svc is in use: others share the overflow gate")
        pacer = nil
        XCTAssertFalse(table.acquire(service: "other") === overflow, "svc's place is free again")
        XCTAssertEqual(table.services, 1)
    }

    func testAReloadKeepsTheGatesOfAnUnchangedPolicyOnly() throws {
        func config(_ slow: String) throws -> GatewayConfig {
            try GatewayConfig.parse(text: """
                [tunnel]
                cert = "gw.crt"
                key = "gw.key"
                [[agent]]
                name = "a"
                token = "0123456789abcdef0123"
                policy = ["slow", "same"]
                [[policy]]
                name = "slow"
                bandwidth = "\(slow)"
                [[policy]]
                name = "same"
                bandwidth = "1GiB"
                """, file: "/tmp/gateway.toml") { _ in "" }.get()
        }
        let counters = PolicyCounters()
        let first = PolicySet(config: try config("10MiB"), previous: nil, counters: counters)
        let second = PolicySet(config: try config("20MiB"), previous: first, counters: counters)
        XCTAssertTrue(first.cells["same"]!.bandwidth! === second.cells["same"]!.bandwidth!)
        XCTAssertFalse(first.cells["slow"]!.bandwidth! === second.cells["slow"]!.bandwidth!)
        XCTAssertEqual(second.cells["slow"]!.bandwidth!.rate, 20 << 20)
    }
}
