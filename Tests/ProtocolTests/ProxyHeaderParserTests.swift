import XCTest
@testable import Protocol

final class ProxyHeaderParserTests: XCTestCase {
    private func parse(_ bytes: [UInt8], pieces: Int = 1) -> ProxyHeaderParser.Outcome {
        var parser = ProxyHeaderParser()
        let size = max(1, (bytes.count + pieces - 1) / pieces)
        var outcome = ProxyHeaderParser.Outcome.needMore
        var i = 0
        while i < bytes.count {
            outcome = parser.feed(bytes[i..<min(i + size, bytes.count)])
            // What was not fed yet follows the header's rest as the client's later reads.
            if case .header(let h, let rest) = outcome { return .header(h, rest: rest + bytes[min(i + size, bytes.count)...]) }
            if outcome != .needMore { return outcome }
            i += size
        }
        return outcome
    }

    private func endpoint(_ s: String) -> IPEndpoint { IPEndpoint(s)! }

    private func v2(command: UInt8 = 0x21, family: UInt8 = 0x11, body: [UInt8]) -> [UInt8] {
        ProxyHeaderParser.v2Signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
    }

    func testV1TCP4InAnyPieces() {
        let bytes = Array("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /".utf8)
        for pieces in [1, 3, bytes.count] {
            XCTAssertEqual(parse(bytes, pieces: pieces), .header(
                ProxyHeader(version: .v1, addresses: .proxied(source: endpoint("192.0.2.1:56324"), destination: endpoint("198.51.100.2:443"))),
                rest: Array("GET /".utf8)), "\(pieces) pieces")
        }
    }

    func testV1TCP6AndUnknown() {
        XCTAssertEqual(parse(Array("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n".utf8)), .header(
            ProxyHeader(version: .v1, addresses: .proxied(source: endpoint("[2001:db8::1]:1"), destination: endpoint("[::1]:65535"))), rest: []))
        XCTAssertEqual(parse(Array("PROXY UNKNOWN\r\nx".utf8)), .header(ProxyHeader(version: .v1, addresses: .unknown), rest: [0x78]))
        XCTAssertEqual(parse(Array("PROXY UNKNOWN ffff::1 ::1 1 2\r\n".utf8)), .header(ProxyHeader(version: .v1, addresses: .unknown), rest: []))
    }

    func testV1Refusals() {
        let bad = [
            "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n",       // LF alone
            "PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",         // a field missing
            "PROXY TCP4 192.0.2.1  198.51.100.2 1 443\r\n",        // two spaces
            "PROXY TCP4 2001:db8::1 198.51.100.2 1 443\r\n",       // family mismatch
            "PROXY TCP6 192.0.2.1 198.51.100.2 1 443\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",     // port range
            "PROXY TCP4 192.0.2.1 198.51.100.2 0443 443\r\n",      // leading zero
            "PROXY TCP4 192.0.2.1 198.51.100.2 -1 443\r\n",
            "PROXY UDP4 192.0.2.1 198.51.100.2 1 443\r\n",
            "PROXY tcp4 192.0.2.1 198.51.100.2 1 443\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.2 1 443 \r\n",        // trailing space
            "PROXY TCP4 192.0.2.1 198.51.100.2 1 4\u{0}3\r\n",    // NUL
            "PROXY TCP4 192.0.2.1 198.51.100.2 1 443\r\r\n",
            "PROXYTCP4 192.0.2.1 198.51.100.2 1 443\r\n",
            "proxy TCP4 192.0.2.1 198.51.100.2 1 443\r\n",
            "GET / HTTP/1.1\r\n",
            "\u{16}\u{3}\u{1}",                                    // a TLS ClientHello
        ]
        for text in bad {
            guard case .refused = parse(Array(text.utf8)) else { return XCTFail("accepted \(text.debugDescription)") }
        }
    }

    func testV1LengthBound() {
        // 107 bytes with CRLF last is the longest allowed line.
        let unknown = "PROXY UNKNOWN " + String(repeating: "x", count: 107 - 16) + "\r\n"
        XCTAssertEqual(unknown.utf8.count, 107)
        XCTAssertEqual(parse(Array(unknown.utf8)), .header(ProxyHeader(version: .v1, addresses: .unknown), rest: []))
        let long = "PROXY UNKNOWN " + String(repeating: "x", count: 107 - 15) + "\r\n"
        XCTAssertEqual(parse(Array(long.utf8)), .refused(ProxyHeaderError(.v1TooLong)))
        // Without CRLF the parser stops waiting at 107 bytes, not later.
        var parser = ProxyHeaderParser()
        XCTAssertEqual(parser.feed(Array("PROXY UNKNOWN ".utf8) + [UInt8](repeating: 0x78, count: 92)), .needMore)
        XCTAssertEqual(parser.feed([0x78]), .refused(ProxyHeaderError(.v1TooLong)))
    }

    func testV2TCP4AndTCP6WithTLVsSkipped() {
        let tlvs: [UInt8] = [0x04, 0x00, 0x00, 0xEA, 0x00, 0x03, 0x61, 0x62, 0x63]  // NOOP (empty), custom 3 bytes
        let v4 = v2(body: [192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB] + tlvs) + Array("rest".utf8)
        for pieces in [1, 5, v4.count] {
            XCTAssertEqual(parse(v4, pieces: pieces), .header(
                ProxyHeader(version: .v2, addresses: .proxied(source: endpoint("192.0.2.1:56324"), destination: endpoint("198.51.100.2:443"))),
                rest: Array("rest".utf8)))
        }
        let a6 = IPAddress("2001:db8::1")!.bytes, b6 = IPAddress("::1")!.bytes
        XCTAssertEqual(parse(v2(family: 0x21, body: a6 + b6 + [0, 80, 0, 81])), .header(
            ProxyHeader(version: .v2, addresses: .proxied(source: endpoint("[2001:db8::1]:80"), destination: endpoint("[::1]:81"))), rest: []))
    }

    func testV2LocalAndUnspecUseTheSocket() {
        XCTAssertEqual(parse(v2(command: 0x20, family: 0x00, body: [])), .header(ProxyHeader(version: .v2, addresses: .local), rest: []))
        // LOCAL with an address block: ignored, not read.
        XCTAssertEqual(parse(v2(command: 0x20, family: 0x11, body: [1, 2, 3])), .header(ProxyHeader(version: .v2, addresses: .local), rest: []))
        // PROXY without a client address (UNSPEC, AF_UNIX): relayed, but nobody named.
        XCTAssertEqual(parse(v2(family: 0x00, body: [9, 9])), .header(ProxyHeader(version: .v2, addresses: .unknown), rest: []))
        XCTAssertEqual(parse(v2(family: 0x31, body: [UInt8](repeating: 0, count: 216))),
                       .header(ProxyHeader(version: .v2, addresses: .unknown), rest: []))
        XCTAssertFalse(ProxyHeader.Addresses.local.namesClient)
        XCTAssertFalse(ProxyHeader.Addresses.unknown.namesClient)
        XCTAssertTrue(ProxyHeader.Addresses.proxied(source: endpoint("192.0.2.1:1"), destination: endpoint("192.0.2.2:2")).namesClient)
    }

    func testV2Refusals() {
        let addresses: [UInt8] = [192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 2]
        let bad: [(String, [UInt8])] = [
            ("version 1", v2(command: 0x11, body: addresses)),
            ("command 2", v2(command: 0x22, body: addresses)),
            ("family 4", v2(family: 0x41, body: addresses)),
            ("transport 3", v2(family: 0x13, body: addresses)),
            ("datagram", v2(family: 0x12, body: addresses)),
            ("short IPv4 block", v2(body: Array(addresses[0..<11]))),
            ("short IPv6 block", v2(family: 0x21, body: addresses)),
            ("TLV overrun", v2(body: addresses + [0x01, 0x00, 0x05, 0x61])),
            ("TLV header cut", v2(body: addresses + [0x01, 0x00])),
            ("bad signature", [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0B]),
        ]
        for (what, bytes) in bad {
            guard case .refused = parse(bytes) else { return XCTFail("accepted: \(what)") }
        }
    }

    func testV2LengthIsBoundedBeforeTheBodyArrives() {
        var parser = ProxyHeaderParser()
        let head = ProxyHeaderParser.v2Signature + [0x21, 0x11, 0xFF, 0xFF]
        XCTAssertEqual(parser.feed(head), .refused(ProxyHeaderError(.v2TooLong(65535))))
        let max = v2(body: [192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 2, 0xEA] + [0x07, 0xF1] + [UInt8](repeating: 0, count: 2048 - 15))
        XCTAssertEqual(max.count, ProxyHeaderParser.maxV2Size)
        guard case .header = parse(max) else { return XCTFail("a header of the maximum size is accepted") }
    }

    func testAfterTheHeaderTheParserIsDone() {
        var parser = ProxyHeaderParser()
        XCTAssertNotEqual(parser.feed(Array("PROXY UNKNOWN\r\n".utf8)), .needMore)
        guard case .refused = parser.feed([1]) else { return XCTFail("fed after the end") }
    }

    func testRandomInputNeverCrashesOrOverruns() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            var bytes = Bool.random(using: &rng) ? ProxyHeaderParser.v2Signature : Array("PROXY ".utf8)
            bytes += (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var parser = ProxyHeaderParser()
            var fed = 0
            var outcome = ProxyHeaderParser.Outcome.needMore
            while fed < bytes.count, outcome == .needMore {
                let n = Int.random(in: 1...8, using: &rng)
                outcome = parser.feed(bytes[fed..<min(fed + n, bytes.count)])
                fed = min(fed + n, bytes.count)
            }
            if case .header(_, let rest) = outcome { XCTAssertLessThanOrEqual(rest.count, bytes.count) }
        }
    }
}
