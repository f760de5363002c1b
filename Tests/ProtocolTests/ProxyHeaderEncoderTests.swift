import XCTest
@testable import Protocol

final class ProxyHeaderEncoderTests: XCTestCase {
    private func endpoint(_ text: String) -> IPEndpoint { IPEndpoint(text)! }

    private func proxied(_ version: ProxyHeader.Version, _ source: String, _ destination: String) -> [UInt8] {
        ProxyHeaderEncoder.encode(ProxyHeader(version: version, addresses: .proxied(source: endpoint(source), destination: endpoint(destination))))
    }

    /// proxy-protocol.txt §2.1's example line.
    func testV1IPv4IsTheSpecificationsExample() {
        XCTAssertEqual(String(decoding: proxied(.v1, "192.168.0.1:56324", "192.168.0.11:443"), as: UTF8.self),
                       "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n")
    }

    func testV1IPv6AndItsLongestLine() {
        XCTAssertEqual(String(decoding: proxied(.v1, "[2001:db8::1]:1", "[2001:db8::2]:65535"), as: UTF8.self),
                       "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n")
        let all = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
        let longest = proxied(.v1, all, all)
        XCTAssertEqual(longest.count, 104)  // §2.1: the longest TCP6 line
        XCTAssertEqual(Array(longest.suffix(2)), [0x0D, 0x0A])
    }

    func testV1UnknownIsTheShortForm() {
        XCTAssertEqual(ProxyHeaderEncoder.encode(ProxyHeader(version: .v1, addresses: .local)), Array("PROXY UNKNOWN\r\n".utf8))
    }

    /// §2.2: signature, 0x21 (v2, PROXY), 0x11 (TCP over IPv4), length 12, then
    /// addresses and ports in network order.
    func testV2IPv4ByteForByte() {
        XCTAssertEqual(proxied(.v2, "172.19.0.1:42578", "172.19.0.3:80"), [
            0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
            0x21, 0x11, 0x00, 0x0C,
            0xAC, 0x13, 0x00, 0x01, 0xAC, 0x13, 0x00, 0x03,
            0xA6, 0x52, 0x00, 0x50,
        ])
    }

    func testV2IPv6ByteForByte() {
        let bytes = proxied(.v2, "[2001:db8::1]:443", "[::1]:8443")
        XCTAssertEqual(Array(bytes[0..<16]), ProxyHeaderEncoder.v2Signature + [0x21, 0x21, 0x00, 0x24])
        XCTAssertEqual(bytes.count, 16 + 36)
        XCTAssertEqual(Array(bytes[16..<32]), [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1])
        XCTAssertEqual(Array(bytes[32..<48]), [UInt8](repeating: 0, count: 15) + [1])
        XCTAssertEqual(Array(bytes[48..<52]), [0x01, 0xBB, 0x20, 0xFB])
    }

    /// §2.2: LOCAL (0x20) with family UNSPEC and no address block.
    func testV2LocalHasNoAddresses() {
        XCTAssertEqual(ProxyHeaderEncoder.encode(ProxyHeader(version: .v2, addresses: .local)),
                       ProxyHeaderEncoder.v2Signature + [0x20, 0x00, 0x00, 0x00])
        // UNKNOWN: PROXY (0x21) with family UNSPEC; v1 writes it as UNKNOWN too. Both read back.
        let unknown = ProxyHeaderEncoder.encode(ProxyHeader(version: .v2, addresses: .unknown))
        XCTAssertEqual(unknown, ProxyHeaderEncoder.v2Signature + [0x21, 0x00, 0x00, 0x00])
        var parser = ProxyHeaderParser()
        XCTAssertEqual(parser.feed(unknown), .header(ProxyHeader(version: .v2, addresses: .unknown), rest: []))
        XCTAssertEqual(ProxyHeaderEncoder.encode(ProxyHeader(version: .v1, addresses: .unknown)), Array("PROXY UNKNOWN\r\n".utf8))
    }

    /// Two IPv4-mapped addresses (a dual-stack listener) are written as IPv4.
    func testMappedPairsAreIPv4() {
        XCTAssertEqual(String(decoding: proxied(.v1, "[::ffff:127.0.0.2]:4000", "[::ffff:127.0.0.1]:80"), as: UTF8.self),
                       "PROXY TCP4 127.0.0.2 127.0.0.1 4000 80\r\n")
        XCTAssertEqual(proxied(.v2, "[::ffff:127.0.0.2]:4000", "[::ffff:127.0.0.1]:80")[13], 0x11)
    }

    /// An IPv4 client on an IPv6 listener (or the reverse): the IPv4 side goes IPv4-mapped.
    func testMixedFamiliesMapToIPv6() {
        XCTAssertEqual(String(decoding: proxied(.v1, "192.0.2.1:5000", "[2001:db8::1]:443"), as: UTF8.self),
                       "PROXY TCP6 ::ffff:c000:201 2001:db8::1 5000 443\r\n")
        let v2 = proxied(.v2, "[2001:db8::1]:5000", "192.0.2.1:443")
        XCTAssertEqual(v2[13], 0x21)
        XCTAssertEqual(Array(v2[32..<48]), [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 192, 0, 2, 1])
    }

    func testHeaderFromTunnelFields() {
        let h = ProxyHeaderEncoder.header(version: .v1, client: "127.0.0.2:40000", destination: "[::1]:8080")
        XCTAssertEqual(h.addresses, .proxied(source: endpoint("127.0.0.2:40000"), destination: endpoint("[::1]:8080")))
        // A bare address (a forwarding field without a port) counts as port 0.
        XCTAssertEqual(ProxyHeaderEncoder.header(version: .v2, client: "192.0.2.7", destination: "192.0.2.1:80").addresses,
                       .proxied(source: endpoint("192.0.2.7:0"), destination: endpoint("192.0.2.1:80")))
        // A Unix socket listener, an older gateway, garbage: the receiver uses the socket's own addresses.
        for (client, destination) in [("127.0.0.2:1", "/run/fastgw/http.sock"), ("?", "127.0.0.1:80"), (nil, nil),
                                      ("127.0.0.2:1", nil), ("1.2.3.4:99999", "127.0.0.1:80")] as [(String?, String?)] {
            XCTAssertEqual(ProxyHeaderEncoder.header(version: .v1, client: client, destination: destination).addresses, .local)
        }
    }
}
