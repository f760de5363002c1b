import Protocol
import XCTest

final class TunnelHandshakeTests: XCTestCase {
    private let grants = [
        GatewayConfig.AgentGrant(name: "nas", token: "0123456789abcdef0123", allowPorts: [2222], allowHosts: []),
        GatewayConfig.AgentGrant(name: "lab", token: "fedcba98765432100123", allowPorts: [5432], allowHosts: []),
    ]

    private func head(_ text: String) -> HTTPHead {
        var p = HTTPHeadParser()
        guard case .complete(let h, let rest) = p.feed(Array(text.utf8)) else { fatalError("incomplete") }
        XCTAssertEqual(rest, [])
        return h
    }

    func testRequestRoundTripsAndIsAccepted() {
        let req = TunnelHandshake.request(host: "gw", token: "0123456789abcdef0123", agent: "nas", instance: "abc")
        var parser = HTTPHeadParser()
        let bytes = req.serialized()
        XCTAssertEqual(parser.feed(bytes.prefix(10)), .needMore)
        guard case .complete(let parsed, let rest) = parser.feed(bytes.dropFirst(10) + [1, 2, 3]) else { return XCTFail() }
        XCTAssertEqual(rest, [1, 2, 3], "bytes after the head belong to the next protocol")
        XCTAssertEqual(TunnelHandshake.evaluate(parsed, grants: grants, draining: false), .success(.init(agent: "nas", instance: "abc", token: "0123456789abcdef0123")))
    }

    func testRefusals() {
        func status(_ text: String, draining: Bool = false) -> Int? {
            if case .failure(let r) = TunnelHandshake.evaluate(head(text), grants: grants, draining: draining) { return r.status }
            return nil
        }
        let base = "GET /.fastgw/v1/tunnel HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: fastgw-h2\r\nFastgw-Agent: nas\r\n"
        XCTAssertEqual(status(base + "Authorization: Bearer 0123456789abcdef0123\r\n\r\n"), nil)
        XCTAssertEqual(status(base + "Authorization: Bearer 0123456789abcdef0123\r\n\r\n", draining: true), 503)
        XCTAssertEqual(status(base + "Authorization: Bearer wrongwrongwrongwrong\r\n\r\n"), 401)
        XCTAssertEqual(status(base + "\r\n"), 401)
        XCTAssertEqual(status(base + "Authorization: Bearer fedcba98765432100123\r\n\r\n"), 403, "lab's token presented as nas")
        XCTAssertEqual(status("GET / HTTP/1.1\r\n\r\n"), 400)
        XCTAssertEqual(status("GET /.fastgw/v1/tunnel HTTP/1.0\r\n\r\n"), 400)
        XCTAssertEqual(status("GET /.fastgw/v1/tunnel HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"), 426)
    }

    func testRefusalBodyIsReadBackVerbatimAndNeverHasTheToken() {
        let bytes = TunnelHandshake.refusal(.init(status: 401, reason: "invalid token for agent \"nas\""))
        var parser = HTTPHeadParser()
        guard case .complete(let h, let body) = parser.feed(bytes) else { return XCTFail() }
        XCTAssertEqual(TunnelHandshake.interpret(h, body: body), .refused(status: 401, reason: "invalid token for agent \"nas\""))
        XCTAssertEqual(TunnelHandshake.interpret(TunnelHandshake.switchingProtocols(), body: []), .upgraded)
    }

    func testParserLimitsAndGarbage() {
        var p = HTTPHeadParser(limit: 64)
        XCTAssertEqual(p.feed(Array(repeating: UInt8(ascii: "a"), count: 100)), .invalid("header too large (over 64 bytes)"))
        var q = HTTPHeadParser()
        XCTAssertEqual(q.feed(Array("GET / HTTP/1.1\r\nno colon here\r\n\r\n".utf8)), .invalid("malformed HTTP head"))
        var r = HTTPHeadParser()
        XCTAssertEqual(r.feed([0xff, 0xfe, 13, 10, 13, 10]), .invalid("header is not valid UTF-8"))
    }

    func testConstantTimeCompare() {
        XCTAssertTrue(ConstantTime.equal(Array("abc".utf8), Array("abc".utf8)))
        XCTAssertFalse(ConstantTime.equal(Array("abc".utf8), Array("abd".utf8)))
        XCTAssertFalse(ConstantTime.equal(Array("abc".utf8), Array("abcd".utf8)))
        XCTAssertFalse(ConstantTime.equal([], Array("a".utf8)))
    }
}
