import XCTest
@testable import Protocol

extension ForwardedFields.Hop {
    static func untrusted(_ endpoint: String) -> Self { .init(peer: IPEndpoint(endpoint), trusted: false) }
    static func trusted(_ endpoint: String) -> Self { .init(peer: IPEndpoint(endpoint), trusted: true) }
}

final class ForwardedTrustTests: XCTestCase {
    private let trusted = CIDRSet(["10.0.0.0/8", "2001:db8::/32"].map { try! CIDR.parse($0).get() })

    private func client(_ xff: [String], peer: String) -> String {
        "\(ForwardedFields.client(forwardedFor: xff, peer: IPAddress(peer)!, trusted: trusted))"
    }

    func testRightMostUntrustedAddressIsTheClient() {
        XCTAssertEqual(client(["6.6.6.6, 192.0.2.1"], peer: "10.0.0.1"), "192.0.2.1")
        XCTAssertEqual(client(["6.6.6.6", "192.0.2.1, 10.0.0.9"], peer: "10.0.0.1"), "192.0.2.1")
        XCTAssertEqual(client(["[2001:db9::1]:443, 2001:db8::5"], peer: "::ffff:10.0.0.1"), "2001:db9::1")
        XCTAssertEqual(client(["192.0.2.1:5555"], peer: "10.0.0.1"), "192.0.2.1")
    }

    func testAnUntrustedPeerIsTheClientWhateverItClaims() {
        XCTAssertEqual(client(["10.0.0.5"], peer: "192.0.2.9"), "192.0.2.9")
    }

    func testGarbageOrNoChainStopsAtTheLastCheckedHop() {
        XCTAssertEqual(client([], peer: "10.0.0.1"), "10.0.0.1")
        XCTAssertEqual(client(["6.6.6.6, nonsense, 10.0.0.7"], peer: "10.0.0.1"), "10.0.0.7")
        XCTAssertEqual(client(["10.0.0.3, 10.0.0.2"], peer: "10.0.0.1"), "10.0.0.3", "all trusted: the left-most")
    }

    func testTheWalkIsBounded() {
        let long = (0..<10_000).map { "10.0.\($0 / 256 % 256).\($0 % 256)" }.joined(separator: ", ")
        let start = Date()
        XCTAssertEqual(client(["192.0.2.1, " + long], peer: "10.0.0.1").hasPrefix("10."), true)
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
    }

    func testForwardedElementQuotesIPv6AndOddHosts() {
        XCTAssertEqual(ForwardedFields.forwardedElement(hop: .untrusted("[2001:db8::1]:4711"), proto: "https", host: "a.test"),
                       "for=\"[2001:db8::1]:4711\";proto=https;host=a.test")
        XCTAssertEqual(ForwardedFields.forwardedElement(hop: .untrusted("192.0.2.1:80"), proto: "http", host: "a.test:8080"),
                       "for=\"192.0.2.1:80\";proto=http;host=\"a.test:8080\"")
        XCTAssertEqual(ForwardedFields.forwardedElement(hop: .init(peer: nil, trusted: false), proto: "http", host: "a\"b"),
                       "for=unknown;proto=http;host=\"a\\\"b\"")
    }

    private func head(_ extra: String) -> HTTPHead {
        HTTPHeadParser.parse(bytes: Array("GET / HTTP/1.1\r\nHost: a.test\r\n\(extra)\r\n".utf8))!
    }

    func testTrustedHopsChainsAreContinued() {
        let h = head("X-Forwarded-For: 6.6.6.6, 192.0.2.1\r\nForwarded: for=192.0.2.1\r\n")
        let f = ForwardedFields.fields(hop: .trusted("10.0.0.1:999"), proto: "https", host: "a.test", head: h)
        XCTAssertEqual(f["x-forwarded-for"], "6.6.6.6, 192.0.2.1, 10.0.0.1")
        XCTAssertEqual(f["forwarded"], "for=192.0.2.1, for=\"10.0.0.1:999\";proto=https;host=a.test")
    }

    func testUntrustedHopsChainsAreReplaced() {
        let h = head("X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n")
        let f = ForwardedFields.fields(hop: .untrusted("192.0.2.3:1"), proto: "http", host: "a.test", head: h)
        XCTAssertEqual(f["x-forwarded-for"], "192.0.2.3")
        XCTAssertEqual(f["forwarded"], "for=\"192.0.2.3:1\";proto=http;host=a.test")
    }
}
