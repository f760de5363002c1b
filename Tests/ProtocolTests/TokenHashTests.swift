@testable import Protocol
import XCTest

final class TokenHashTests: XCTestCase {
    func testSHA256KnownAnswers() {
        // FIPS 180-4 examples, and a message across the 55/56-byte padding boundary.
        XCTAssertEqual(SHA256.hex("".utf8), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(Array(repeating: UInt8(ascii: "a"), count: 1000)),
                       "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    func testHexRoundTripsAndRefusesOddOrForeignDigits() {
        XCTAssertEqual(Hex.decode("00ff7Fa0"), [0x00, 0xff, 0x7f, 0xa0])
        XCTAssertEqual(Hex.encode([0x00, 0xff, 0x7f, 0xa0]), "00ff7fa0")
        XCTAssertNil(Hex.decode("abc"))
        XCTAssertNil(Hex.decode("zz"))
    }

    private func parse(_ agentTable: String) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig.parse(text: """
        [tunnel]
        listen = "127.0.0.1:7443"
        cert = "c.pem"
        key = "k.pem"
        [[agent]]
        name = "nas"
        allow_ports = [2222]
        \(agentTable)
        """, file: "gw.toml", readFile: { _ in "" })
    }

    func testAGatewayMayHoldOnlyTheTokensHash() throws {
        let token = "0123456789abcdef0123456789abcdef"
        let config = try parse("token_sha256 = \"\(SHA256.hex(token.utf8).uppercased())\"").get()
        let grant = try XCTUnwrap(config.agents.first)
        XCTAssertTrue(grant.accepts(Array(token.utf8), presentedHash: SHA256.hash(token.utf8)))
        let other = "0123456789abcdef0123456789abcdeX"
        XCTAssertFalse(grant.accepts(Array(other.utf8), presentedHash: SHA256.hash(other.utf8)))
        // The handshake takes the token against the hash.
        let head = "GET /.fastgw/v1/tunnel HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer \(token)\r\nFastgw-Agent: nas\r\nConnection: Upgrade\r\nUpgrade: fastgw-h2\r\n\r\n"
        var parser = HTTPHeadParser(limit: 8192)
        guard case .complete(let parsed, _) = parser.feed(Array(head.utf8)) else { return XCTFail("head") }
        guard case .success = TunnelHandshake.evaluate(parsed, grants: config.agents, draining: false) else {
            return XCTFail("token refused against its hash")
        }
    }

    func testTokenHashErrorsHaveTheirLine() {
        guard case .failure(let e) = parse("token_sha256 = \"abc\"") else { return XCTFail("short hash accepted") }
        XCTAssertTrue(e.diagnostics.contains { $0.description.hasPrefix("gw.toml:8:") && $0.description.contains("64 hex digits") }, "\(e)")
        guard case .failure(let both) = parse("token = \"0123456789abcdef0123456789abcdef\"\ntoken_sha256 = \"\(String(repeating: "a", count: 64))\"")
        else { return XCTFail("token and token_sha256 accepted together") }
        XCTAssertTrue(both.diagnostics.contains { $0.description.contains("set one of token, token_file and token_sha256") }, "\(both)")
        XCTAssertFalse(both.diagnostics.contains { $0.description.contains("unknown key") }, "\(both)")
    }
}
