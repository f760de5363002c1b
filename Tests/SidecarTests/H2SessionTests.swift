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

    /// Without `consume`, the receiver grants no window: the sender stalls at the stream window
    /// and its queue stays above the watermark until the receiver consumes.
    func testWindowIsGrantedOnlyWhenConsumed() throws {
        let (client, server) = try pair()
        let id = try client.openStream(headers: [HeaderField(":method", "CONNECT"), HeaderField(":authority", "bulk")])
        try shuttle(client, server)
        server.respond(stream: id, headers: [HeaderField(":status", "200")], endStream: false)
        let chunk = ByteBuffer(repeating: 0x61, count: 64 << 10)
        var accepted = 0
        for _ in 0..<16 { if client.write(stream: id, chunk) { accepted += 1 } }
        XCTAssertEqual(accepted, 0, "64 KiB chunks reach the 64 KiB watermark at once")
        try shuttle(client, server)

        var received = take(server).reduce(0) { n, e in if case .data(_, let b) = e { return n + b.readableBytes } else { return n } }
        XCTAssertEqual(received, tuning.streamWindow, "exactly one stream window in flight")
        XCTAssertEqual(client.queuedBytes(stream: id), 16 * (64 << 10) - tuning.streamWindow)
        XCTAssertFalse(take(client).contains { if case .writable = $0 { return true } else { return false } })

        server.consume(stream: id, bytes: received)
        try shuttle(client, server)
        received = take(server).reduce(0) { n, e in if case .data(_, let b) = e { return n + b.readableBytes } else { return n } }
        XCTAssertEqual(received, tuning.streamWindow)
    }

    func testPingIsAcknowledgedWithItsOpaqueValue() throws {
        let (client, server) = try pair()
        client.ping(opaque: 0x0102_0304_0506_0708)
        try shuttle(client, server)
        XCTAssertTrue(take(client).contains { if case .pingAcknowledged(0x0102_0304_0506_0708) = $0 { return true } else { return false } })
    }

    func testGarbageIsAProtocolError() throws {
        let (_, server) = try pair()
        XCTAssertThrowsError(try server.receive(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")))
    }
}
