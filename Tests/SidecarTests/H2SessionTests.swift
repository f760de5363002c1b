import NIOCore
import Protocol
import XCTest

@testable import Sidecar

/// Two sessions, client and server, wired back to back in memory.
final class H2SessionTests: XCTestCase {
    private let tuning = H2Tuning(connectionWindow: 1 << 20, streamWindow: 256 << 10, sendWatermark: 64 << 10)

    private func pair() throws -> (H2Session, H2Session) {
        let client = try H2Session(role: .client, tuning: tuning, allocator: ByteBufferAllocator())
        let server = try H2Session(role: .server, tuning: tuning, allocator: ByteBufferAllocator())
        return (client, server)
    }

    /// Moves output both ways until neither side has anything to send.
    private func shuttle(_ a: H2Session, _ b: H2Session) throws {
        for _ in 0..<100 {
            let ab = try a.drainOutput()
            let ba = try b.drainOutput()
            if ab.isEmpty && ba.isEmpty { return }
            for buf in ab { try b.receive(buf) }
            for buf in ba { try a.receive(buf) }
        }
        XCTFail("sessions never went quiet")
    }

    private func take(_ s: H2Session) -> [H2Event] {
        defer { s.events.removeAll() }
        return s.events
    }

    func testConnectStreamCarriesBytesBothWaysWithHalfClose() throws {
        let (client, server) = try pair()
        let id = try client.openStream(headers: [
            HeaderField(":method", "CONNECT"), HeaderField(":authority", "ssh"), HeaderField("fastgw-client", "127.0.0.1:5000"),
        ])
        try shuttle(client, server)
        var events = take(server)
        guard case .headers(let sid, let fields, false)? = events.first else { return XCTFail("\(events)") }
        XCTAssertEqual(sid, id)
        XCTAssertEqual(fields[":authority"], "ssh")
        XCTAssertEqual(fields["fastgw-client"], "127.0.0.1:5000")

        server.respond(stream: id, headers: [HeaderField(":status", "200")], endStream: false)
        client.write(stream: id, ByteBuffer(string: "hello"))
        client.finish(stream: id)
        server.write(stream: id, ByteBuffer(string: "world"))
        try shuttle(client, server)

        events = take(server)
        let serverData = events.compactMap { if case .data(_, let b) = $0 { return String(buffer: b) } else { return nil } }
        XCTAssertEqual(serverData.joined(), "hello")
        XCTAssertTrue(events.contains { if case .remoteEnded(id) = $0 { return true } else { return false } })

        events = take(client)
        XCTAssertTrue(events.contains { if case .headers(id, let f, false) = $0 { return f[":status"] == "200" } else { return false } })
        let clientData = events.compactMap { if case .data(_, let b) = $0 { return String(buffer: b) } else { return nil } }
        XCTAssertEqual(clientData.joined(), "world")

        server.finish(stream: id)
        try shuttle(client, server)
        XCTAssertTrue(take(client).contains { if case .closed(id, 0) = $0 { return true } else { return false } })
        XCTAssertTrue(take(server).contains { if case .closed(id, 0) = $0 { return true } else { return false } })
    }

    private func received(_ s: H2Session, stream: Int32? = nil) -> Int {
        take(s).reduce(0) { n, e in
            if case .data(let id, let b) = e, stream == nil || stream == id { return n + b.readableBytes }
            return n
        }
    }

    private func openBulk(_ client: H2Session, _ server: H2Session) throws -> Int32 {
        let id = try client.openStream(headers: [HeaderField(":method", "CONNECT"), HeaderField(":authority", "bulk")])
        try shuttle(client, server)
        _ = take(server)
        server.respond(stream: id, headers: [HeaderField(":status", "200")], endStream: false)
        return id
    }

    /// Without `consume`, the receiver grants no stream window: the sender stalls at the
    /// stream's initial window and its queue stays above the watermark until the receiver
    /// consumes; a reader that keeps up earns a window twice as large each round.
    func testWindowIsGrantedOnlyWhenConsumedAndGrowsForAReaderThatKeepsUp() throws {
        let (client, server) = try pair()
        let id = try openBulk(client, server)
        let chunk = ByteBuffer(repeating: 0x61, count: 64 << 10)
        var accepted = 0
        for _ in 0..<16 { if client.write(stream: id, chunk) { accepted += 1 } }
        XCTAssertEqual(accepted, 0, "64 KiB chunks reach the 64 KiB watermark at once")
        try shuttle(client, server)

        var got = received(server)
        XCTAssertEqual(got, tuning.initialStreamWindow, "exactly the initial stream window in flight")
        XCTAssertEqual(client.queuedBytes(stream: id), 16 * (64 << 10) - got)
        XCTAssertFalse(take(client).contains { if case .writable = $0 { return true } else { return false } })

        var window = tuning.initialStreamWindow
        var total = got
        while total < 16 * (64 << 10) {
            server.consume(stream: id, bytes: got)
            try shuttle(client, server)
            window = min(window * 2, tuning.streamWindow)
            got = received(server)
            XCTAssertEqual(got, min(window, 16 * (64 << 10) - total), "after \(total) bytes")
            total += got
        }
    }

    /// Streams whose readers never read hold only their own windows: the connection window
    /// goes back as DATA arrives, so a new stream still flows when the stalled ones together
    /// hold more than the whole connection window — and their bytes count nowhere once reset.
    func testStalledStreamsDoNotHoldTheConnectionWindow() throws {
        let (client, server) = try pair()
        var stalled: [Int32] = []
        for _ in 0..<20 { stalled.append(try openBulk(client, server)) }
        for id in stalled { client.write(stream: id, ByteBuffer(repeating: 0x62, count: 128 << 10)) }
        try shuttle(client, server)
        XCTAssertEqual(received(server), 20 * tuning.initialStreamWindow)
        XCTAssertGreaterThan(20 * tuning.initialStreamWindow, tuning.connectionWindow)
        XCTAssertEqual(server.unconsumedBytes, 20 * tuning.initialStreamWindow)

        let fresh = try openBulk(client, server)
        var total = 0
        for _ in 0..<64 {
            client.write(stream: fresh, ByteBuffer(repeating: 0x63, count: 64 << 10))
            try shuttle(client, server)
            let got = received(server, stream: fresh)
            server.consume(stream: fresh, bytes: got)
            total += got
        }
        try shuttle(client, server)
        total += received(server, stream: fresh)
        XCTAssertEqual(total, 64 * (64 << 10), "the fresh stream moved 4 MiB past 20 stalled streams")

        for id in stalled { client.reset(stream: id) }
        try shuttle(client, server)
        XCTAssertEqual(server.unconsumedBytes, 0, "reset streams hold nothing")
    }

    /// Windows grow only within the connection's budget, so streams that grew and then
    /// stalled hold at most the budget beyond their initial windows.
    func testWindowGrowthIsCappedByTheConnectionBudget() {
        var budget = StreamWindowBudget(limit: 256 << 10)
        var a = StreamReceiveWindow(initial: 64 << 10, maximum: 4 << 20)
        var b = StreamReceiveWindow(initial: 64 << 10, maximum: 4 << 20)
        var c = StreamReceiveWindow(initial: 64 << 10, maximum: 4 << 20)
        XCTAssertNil(a.consumed(32 << 10, budget: &budget), "half a window earns nothing")
        XCTAssertEqual(a.consumed(32 << 10, budget: &budget), 128 << 10)
        XCTAssertEqual(a.consumed(128 << 10, budget: &budget), 256 << 10)
        XCTAssertEqual(b.consumed(64 << 10, budget: &budget), 128 << 10)
        XCTAssertEqual(budget.used, 256 << 10)
        XCTAssertNil(c.consumed(64 << 10, budget: &budget), "the budget is spent")
        XCTAssertEqual(c.size, 64 << 10)
        b.release(to: &budget)
        XCTAssertEqual(c.consumed(0, budget: &budget), 128 << 10, "room again once a stream ended")
        XCTAssertEqual(budget.used, 256 << 10)
    }

    func testPingIsAcknowledgedWithItsOpaqueValue() throws {
        let (client, server) = try pair()
        client.ping(opaque: 0x0102_0304_0506_0708)
        try shuttle(client, server)
        XCTAssertTrue(take(client).contains { if case .pingAcknowledged(0x0102_0304_0506_0708) = $0 { return true } else { return false } })
    }

    /// An HPACK bomb: a header block that decodes to more than the limit is refused while
    /// it is decoded, and none of its fields is kept.
    func testHeaderBlockOverTheLimitIsRefusedWhileDecoding() throws {
        var small = tuning
        small.maxHeaderListSize = 4096
        let client = try H2Session(role: .client, tuning: tuning, allocator: ByteBufferAllocator())
        let server = try H2Session(role: .server, tuning: small, allocator: ByteBufferAllocator())
        let big = (0..<40).map { HeaderField("x-filler-\($0)", String(repeating: "v", count: 200)) }
        let id = try client.openStream(headers: [
            HeaderField(":method", "GET"), HeaderField(":scheme", "https"), HeaderField(":authority", "a"), HeaderField(":path", "/"),
        ] + big, endStream: true)
        try shuttle(client, server)
        let events = take(server)
        XCTAssertTrue(events.contains { if case .headersTooLarge(id) = $0 { return true } else { return false } }, "\(events)")
        XCTAssertFalse(events.contains { if case .headers = $0 { return true } else { return false } })
        XCTAssertTrue(server.incomingHeaders.isEmpty)

        let many = (0..<20).map { HeaderField("x-\($0)", "v") }
        var few = tuning
        few.maxHeaderFields = 10
        let server2 = try H2Session(role: .server, tuning: few, allocator: ByteBufferAllocator())
        let client2 = try H2Session(role: .client, tuning: tuning, allocator: ByteBufferAllocator())
        let id2 = try client2.openStream(headers: [
            HeaderField(":method", "GET"), HeaderField(":scheme", "https"), HeaderField(":authority", "a"), HeaderField(":path", "/"),
        ] + many, endStream: true)
        try shuttle(client2, server2)
        XCTAssertTrue(take(server2).contains { if case .headersTooLarge(id2) = $0 { return true } else { return false } })
    }

    /// A peer that allows no concurrent stream gets no stream queued for ever: opening fails.
    func testOpeningAStreamBeyondThePeersLimitFails() throws {
        var none = tuning
        none.maxConcurrentStreams = 0
        let client = try H2Session(role: .client, tuning: tuning, allocator: ByteBufferAllocator())
        let server = try H2Session(role: .server, tuning: none, allocator: ByteBufferAllocator())
        try shuttle(client, server)
        XCTAssertThrowsError(try client.openStream(headers: [HeaderField(":method", "CONNECT"), HeaderField(":authority", "x")]))
    }

    /// The tunnel's server (the agent) takes any number of resets from the gateway; a public
    /// session keeps nghttp2's rapid-reset defence and says so with a GOAWAY of its own.
    func testResetFloodsEndTheSessionOnlyWhenThePeerIsNotTrusted() throws {
        for trusted in [true, false] {
            var serverTuning = tuning
            serverTuning.trustsPeerResets = trusted
            let client = try H2Session(role: .client, tuning: tuning, allocator: ByteBufferAllocator())
            let server = try H2Session(role: .server, tuning: serverTuning, allocator: ByteBufferAllocator())
            for _ in 0..<3000 {
                let id = try client.openStream(headers: [HeaderField(":method", "CONNECT"), HeaderField(":authority", "x")])
                try shuttle(client, server)
                client.reset(stream: id)
                try shuttle(client, server)
            }
            let sentGoaway = take(server).contains { if case .goawaySent = $0 { return true } else { return false } }
            XCTAssertEqual(sentGoaway, !trusted, "trusted: \(trusted)")
        }
    }

    func testGarbageIsAProtocolError() throws {
        let (_, server) = try pair()
        XCTAssertThrowsError(try server.receive(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")))
    }
}
