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

    // A PROXY header that named no client leaves the balancer as the client: never trusted.
    func testAHopWhoseClientNoHeaderNamedIsNotTrusted() {
        let balancer = IPEndpoint("10.0.0.1:4000")
        XCTAssertTrue(ForwardedFields.Hop(client: balancer, named: true, trustedProxies: trusted).trusted)
        XCTAssertFalse(ForwardedFields.Hop(client: balancer, named: false, trustedProxies: trusted).trusted)
        XCTAssertFalse(ForwardedFields.Hop(client: IPEndpoint("192.0.2.1:1"), named: true, trustedProxies: trusted).trusted)
        XCTAssertFalse(ForwardedFields.Hop(client: nil, named: true, trustedProxies: trusted).trusted)
        // Its spoofed fields are replaced, as any client's.
        let h = head("X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n")
        let f = ForwardedFields.fields(hop: .init(client: balancer, named: false, trustedProxies: trusted), proto: "http", host: "a.test", head: h)
        XCTAssertEqual(f["x-forwarded-for"], "10.0.0.1")
        XCTAssertEqual(f["x-forwarded-proto"], "http")
    }

    func testATrustedProxysProtoAndHostAreKeptWhenWellFormed() {
        let h = head("X-Forwarded-Proto: HTTPS\r\nX-Forwarded-Host: shop.example:8443\r\n")
        let f = ForwardedFields.fields(hop: .trusted("10.0.0.1:9"), proto: "http", host: "a.test", head: h)
        XCTAssertEqual(f["x-forwarded-proto"], "https")
        XCTAssertEqual(f["x-forwarded-host"], "shop.example:8443")
        // The Forwarded element added still says what this hop saw.
        XCTAssertEqual(f["forwarded"], "for=\"10.0.0.1:9\";proto=http;host=a.test")
        // From an untrusted client: this hop's.
        let u = ForwardedFields.fields(hop: .untrusted("192.0.2.1:9"), proto: "http", host: "a.test", head: h)
        XCTAssertEqual(u["x-forwarded-proto"], "http")
        XCTAssertEqual(u["x-forwarded-host"], "a.test")
    }

    func testATrustedProxysOddProtoOrHostIsReplaced() {
        for extra in ["X-Forwarded-Proto: gopher\r\nX-Forwarded-Host: a b\r\n",
                      "X-Forwarded-Proto: https, http\r\nX-Forwarded-Host: x.test, y.test\r\n",
                      "X-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: x.test:99999\r\n",
                      "X-Forwarded-Host: x.test/evil\r\n", "X-Forwarded-Host: [nonsense]:80\r\n", "X-Forwarded-Host: :80\r\n"] {
            let f = ForwardedFields.fields(hop: .trusted("10.0.0.1:9"), proto: "http", host: "a.test", head: head(extra))
            XCTAssertEqual(f["x-forwarded-proto"], "http", extra)
            XCTAssertEqual(f["x-forwarded-host"], "a.test", extra)
        }
        XCTAssertTrue(ForwardedFields.isSaneHost("[2001:db8::1]:443"))
        XCTAssertTrue(ForwardedFields.isSaneHost("192.0.2.1"))
        XCTAssertFalse(ForwardedFields.isSaneHost(String(repeating: "a", count: 256)))
    }

    private func clientFromForwarded(_ values: [String], peer: String = "10.0.0.1") -> String {
        "\(ForwardedFields.client(forwarded: values, peer: IPAddress(peer)!, trusted: trusted))"
    }

    func testForwardedOnlyNamesTheRightMostUntrustedFor() {
        XCTAssertEqual(clientFromForwarded(["for=6.6.6.6, for=192.0.2.1;proto=https"]), "192.0.2.1")
        XCTAssertEqual(clientFromForwarded(["for=6.6.6.6", "For=\"[2001:db9::1]:443\";by=10.0.0.2, for=10.0.0.9"]), "2001:db9::1")
        XCTAssertEqual(clientFromForwarded(["for=\"192.0.2.7:80\""]), "192.0.2.7")
        XCTAssertEqual(clientFromForwarded(["for=192.0.2.1"], peer: "192.0.2.9"), "192.0.2.9", "an untrusted peer is the client")
        // Through the whole request: X-Forwarded-For wins when present, Forwarded otherwise.
        let both = head("X-Forwarded-For: 192.0.2.5\r\nForwarded: for=192.0.2.6\r\n")
        XCTAssertEqual(ForwardedFields.client(head: both, peer: IPAddress("10.0.0.1")!, trusted: trusted), IPAddress("192.0.2.5")!)
        let only = head("Forwarded: for=192.0.2.6;proto=https\r\n")
        XCTAssertEqual(ForwardedFields.client(head: only, peer: IPAddress("10.0.0.1")!, trusted: trusted), IPAddress("192.0.2.6")!)
        XCTAssertEqual(ForwardedFields.client(head: head(""), peer: IPAddress("10.0.0.1")!, trusted: trusted), IPAddress("10.0.0.1")!)
    }

    func testForwardedUnknownObfuscatedOrGarbageStopsTheWalk() {
        XCTAssertEqual(clientFromForwarded(["for=6.6.6.6, for=unknown, for=10.0.0.7"]), "10.0.0.7")
        XCTAssertEqual(clientFromForwarded(["for=6.6.6.6, for=_hidden"]), "10.0.0.1")
        XCTAssertEqual(clientFromForwarded(["for=6.6.6.6, proto=https"]), "10.0.0.1", "an element without for=")
        XCTAssertEqual(clientFromForwarded(["for=6.6.6.6, for=\"192.0.2.1:_port\""]), "10.0.0.1")
        XCTAssertEqual(clientFromForwarded(["for=2001:db9::1"]), "10.0.0.1", "IPv6 must be quoted in brackets")
        // Not RFC 7239 at all: nobody past the peer.
        for garbage in ["for=6.6.6.6 for=1.2.3.4", "for=\"6.6.6.6", "for", "for=1.2.3.4;for=5.6.7.8", "=x", "for=6.6.6.6,,;"] {
            XCTAssertEqual(clientFromForwarded([garbage]), "10.0.0.1", garbage)
        }
        // A comma inside a quoted value does not split elements.
        XCTAssertEqual(clientFromForwarded(["for=192.0.2.1;host=\"a,b\""]), "192.0.2.1")
    }

    func testTheForwardedWalkIsBounded() {
        let long = (0..<100).map { "for=10.0.0.\($0)" }.joined(separator: ", ")
        XCTAssertEqual(clientFromForwarded(["for=192.0.2.1, " + long]).hasPrefix("10."), true)
        let huge = String(repeating: "for=10.0.0.2, ", count: 2000) + "for=192.0.2.1"
        XCTAssertEqual(clientFromForwarded([huge]), "10.0.0.1")
    }
}
