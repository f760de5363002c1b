import Protocol
import XCTest

/// The WebSocket carrier's pure parts: framing (RFC 6455 §5), the handshake fields, and the
/// choice of carrier under `transport = "auto"`.
final class WebSocketCarrierTests: XCTestCase {
    private func feed(_ d: inout WebSocketFrameDecoder, _ bytes: [UInt8]) throws -> [WebSocketFrameDecoder.Event] {
        try bytes.withUnsafeBytes { raw throws(WebSocketFrameDecoder.Violation) in try d.feed(raw) }
    }

    /// The payload bytes the data events point at, unmasked.
    private func payload(_ events: [WebSocketFrameDecoder.Event], in bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for case .data(let range, let mask, let offset) in events {
            for (k, i) in range.enumerated() { out.append(bytes[i] ^ (mask.map { $0[(offset + k) % 4] } ?? 0)) }
        }
        return out
    }

    func testMaskedBinaryFrameFromRFCExample() throws {
        // RFC 6455 §5.7's masked "Hello", as a binary frame.
        let frame: [UInt8] = [0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        var server = WebSocketFrameDecoder(peerMasks: true)
        XCTAssertEqual(payload(try feed(&server, frame), in: frame), Array("Hello".utf8))
        // Byte by byte: the header is gathered, the payload reported as it comes, mask offsets kept.
        var slow = WebSocketFrameDecoder(peerMasks: true)
        var got: [UInt8] = []
        for b in frame { got += payload(try feed(&slow, [b]), in: [b]) }
        XCTAssertEqual(got, Array("Hello".utf8))
    }

    func testLengthsFragmentsAndControlFramesBetween() throws {
        for length in [0, 125, 126, 65535, 65536, 300_000] {
            let header = WebSocketFrameHeader.bytes(opcode: WebSocketFrameHeader.binary, length: length, mask: nil)
            XCTAssertEqual(header.count, length <= 125 ? 2 : length <= 65535 ? 4 : 10, "\(length)")
            let bytes = header + [UInt8](repeating: 7, count: length)
            var client = WebSocketFrameDecoder(peerMasks: false)
            XCTAssertEqual(payload(try feed(&client, bytes), in: bytes).count, length)
        }
        // A message in two fragments with a ping between them (allowed, §5.4).
        let bytes: [UInt8] = [0x02, 0x02, 1, 2] + WebSocketFrameHeader.control(opcode: 0x9, payload: [9], mask: nil) + [0x80, 0x01, 3]
        var client = WebSocketFrameDecoder(peerMasks: false)
        let events = try feed(&client, bytes)
        XCTAssertEqual(payload(events, in: bytes), [1, 2, 3])
        XCTAssertTrue(events.contains(.ping([9])))
        // A masked close frame gives its code; input after it is ignored.
        let close = WebSocketFrameHeader.control(opcode: 0x8, payload: WebSocketFrameHeader.closePayload(1001), mask: [1, 2, 3, 4])
        var server = WebSocketFrameDecoder(peerMasks: true)
        XCTAssertEqual(try feed(&server, close + [0x82, 0x80, 0, 0, 0, 0]), [.close(code: 1001)])
    }

    func testViolations() {
        func violation(_ bytes: [UInt8], peerMasks: Bool = false) -> UInt16? {
            var d = WebSocketFrameDecoder(peerMasks: peerMasks)
            do { _ = try feed(&d, bytes) } catch { return (error as? WebSocketFrameDecoder.Violation)?.code }
            return nil
        }
        XCTAssertEqual(violation([0x82, 0x01, 0], peerMasks: true), 1002, "a client must mask")
        XCTAssertEqual(violation([0x82, 0x01, 0], peerMasks: false), nil)
        XCTAssertEqual(violation([0x82, 0x81, 0, 0, 0, 0, 0], peerMasks: false), 1002, "a server must not mask")
        XCTAssertEqual(violation([0x81, 0x00]), 1003, "text frame")
        XCTAssertEqual(violation([0xC2, 0x00]), 1002, "reserved bit without an extension")
        XCTAssertEqual(violation([0x80, 0x00]), 1002, "continuation without a message")
        XCTAssertEqual(violation([0x02, 0x00, 0x82, 0x00]), 1002, "new message inside a fragmented one")
        XCTAssertEqual(violation([0x09, 0x00]), 1002, "fragmented control frame")
        XCTAssertEqual(violation([0x89, 0x7e, 0x00, 0x7e]), 1002, "control frame over 125 bytes")
        XCTAssertEqual(violation([0x83, 0x00]), 1002, "unknown opcode")
        XCTAssertEqual(violation([0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]), 1002, "length over 2^63")
    }

    func testHandshakeAsksForAndAnswersTheWebSocketCarrier() {
        let grants = [GatewayConfig.AgentGrant(name: "nas", token: "0123456789abcdef0123", allowPorts: [], allowHosts: [])]
        let key = "dGhlIHNhbXBsZSBub25jZQ=="
        let request = TunnelHandshake.request(host: "gw", token: "0123456789abcdef0123", agent: "nas", instance: "i", websocketKey: key)
        XCTAssertEqual(request["Upgrade"], "websocket")
        XCTAssertEqual(
            TunnelHandshake.evaluate(request, grants: grants, draining: false),
            .success(.init(agent: "nas", instance: "i", token: "0123456789abcdef0123", carrier: .websocket, websocketKey: key)))

        func status(_ change: (inout HTTPHead) -> Void) -> Int? {
            var h = request
            change(&h)
            if case .failure(let r) = TunnelHandshake.evaluate(h, grants: grants, draining: false) { return r.status }
            return nil
        }
        func set(_ name: String, _ value: String) -> (inout HTTPHead) -> Void {
            { h in h.fields = h.fields.map { $0.name == name ? (name, value) : $0 } }
        }
        XCTAssertEqual(status(set("Sec-WebSocket-Version", "8")), 426)
        XCTAssertEqual(status(set("Sec-WebSocket-Key", "short")), 400)
        XCTAssertEqual(status(set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ!=")), 400)
        XCTAssertEqual(status(set("Sec-WebSocket-Protocol", "chat")), 400)
        XCTAssertEqual(status(set("Upgrade", "h2c")), 426)

        // RFC 6455 §1.3's accept value for that key.
        let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        let answer = TunnelHandshake.switchingProtocols(carrier: .websocket, websocketAccept: accept)
        XCTAssertEqual(TunnelHandshake.interpret(answer, body: [], websocketAccept: accept), .upgraded)
        XCTAssertEqual(
            TunnelHandshake.interpret(answer, body: [], websocketAccept: "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            .malformed("101 with a wrong Sec-WebSocket-Accept"))
        XCTAssertEqual(
            TunnelHandshake.interpret(TunnelHandshake.switchingProtocols(), body: [], websocketAccept: accept),
            .malformed("101 without Upgrade: websocket"))
        XCTAssertEqual(TunnelHandshake.interpret(answer, body: []), .malformed("101 without Upgrade: fastgw-h2"))
    }

    func testAutoFallsBackOnlyWhenSomethingOnTheWayBrokeTheHandshake() {
        var auto = CarrierChoice(transport: .auto)
        XCTAssertEqual(auto.current, .direct)
        XCTAssertNil(auto.handshakeFailed(status: 401), "the gateway's own refusal")
        XCTAssertNil(auto.handshakeFailed(status: 403))
        XCTAssertNil(auto.handshakeFailed(status: 503), "draining")
        XCTAssertEqual(auto.handshakeFailed(status: 400), .websocket, "a proxy that passes only WebSocket")
        XCTAssertEqual(auto.handshakeFailed(status: nil), .direct, "broken again: try the other way")
        XCTAssertEqual(auto.handshakeFailed(status: nil), .websocket)
        auto.connectionEnded()
        XCTAssertEqual(auto.current, .direct, "after a fallback connection, direct is tried first again")

        var fixed = CarrierChoice(transport: .websocket)
        XCTAssertEqual(fixed.current, .websocket)
        XCTAssertNil(fixed.handshakeFailed(status: 400))
        fixed.connectionEnded()
        XCTAssertEqual(fixed.current, .websocket)
        var direct = CarrierChoice(transport: .h2)
        XCTAssertNil(direct.handshakeFailed(status: nil))
        XCTAssertEqual(direct.current, .direct)
    }
}
