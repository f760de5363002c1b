import NIOCore
import NIOEmbedded
import Protocol
import XCTest

@testable import Sidecar

/// The WebSocket carrier handler on EmbeddedChannels: the agent's masked frames reach the
/// gateway's HTTP/2 layer as the bytes written, and the other way unmasked.
final class WebSocketCarrierHandlerTests: XCTestCase {
    func testAcceptValueFromRFC6455() {
        XCTAssertEqual(WebSocketKey.accept(for: "dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        let key = WebSocketKey.make()
        XCTAssertEqual(key.utf8.count, 24)
        XCTAssertNotEqual(key, WebSocketKey.make())
    }

    /// What `channel` wrote, concatenated.
    private func written(_ channel: EmbeddedChannel) throws -> ByteBuffer {
        var all = ByteBuffer()
        while var b = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&b) }
        return all
    }

    private func received(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var all: [UInt8] = []
        while let b = try channel.readInbound(as: ByteBuffer.self) { all += b.readableBytesView }
        return all
    }

    func testBytesCrossBothWaysAndMasksOnlyFromTheClient() throws {
        let agent = EmbeddedChannel(handler: WebSocketCarrier(role: .client))
        let gateway = EmbeddedChannel(handler: WebSocketCarrier(role: .server))
        defer {
            _ = try? agent.finish()
            _ = try? gateway.finish()
        }
        let payload = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try agent.writeAndFlush(ByteBuffer(bytes: payload)).wait()
        let frame = try written(agent)
        XCTAssertEqual(frame.getInteger(at: 1, as: UInt8.self)! & 0x80, 0x80, "the client masks")
        XCTAssertNotEqual(Array(frame.readableBytesView.suffix(100)), Array(payload.suffix(100)))
        // Delivered in odd pieces: frame boundaries and mask offsets do not matter.
        var rest = frame
        while rest.readableBytes > 0 {
            try gateway.writeInbound(rest.readSlice(length: min(777, rest.readableBytes))!)
        }
        XCTAssertEqual(try received(gateway), payload)

        try gateway.writeAndFlush(ByteBuffer(bytes: payload.prefix(10))).wait()
        let back = try written(gateway)
        XCTAssertEqual(back.getInteger(at: 1, as: UInt8.self)!, 10, "the server does not mask")
        try agent.writeInbound(back)
        XCTAssertEqual(try received(agent), Array(payload.prefix(10)))
    }

    func testPingIsAnsweredAndAViolationClosesWithItsCode() throws {
        let gateway = EmbeddedChannel(handler: WebSocketCarrier(role: .server))
        try gateway.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let ping = WebSocketFrameHeader.control(opcode: WebSocketFrameHeader.ping, payload: [1, 2], mask: [9, 9, 9, 9])
        try gateway.writeInbound(ByteBuffer(bytes: ping))
        XCTAssertEqual(Array(try written(gateway).readableBytesView), [0x8A, 0x02, 1, 2])

        // An unmasked frame from a client: close 1002, and the connection ends.
        XCTAssertThrowsError(try gateway.writeInbound(ByteBuffer(bytes: [0x82, 0x01, 0x00])))
        XCTAssertEqual(Array(try written(gateway).readableBytesView), [0x88, 0x02, 0x03, 0xEA])
        XCTAssertFalse(gateway.isActive)
    }
}
