import XCTest
@testable import Protocol

final class IPAddressTests: XCTestCase {
    func testIPv4RoundTrip() {
        for text in ["0.0.0.0", "192.0.2.1", "255.255.255.255", "10.0.0.10"] {
            XCTAssertEqual(IPAddress(text)?.description, text)
            XCTAssertEqual(IPAddress(text)?.family, .v4)
        }
    }

    func testIPv4Refusals() {
        for text in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "1.2.3.4 ", "a.b.c.d", "1.2.3.-4"] {
            XCTAssertNil(IPAddress(text), text)
        }
    }

    func testIPv6CanonicalText() {
        let cases: [(String, String)] = [
            ("::", "::"), ("::1", "::1"), ("2001:DB8::1", "2001:db8::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("fe80::", "fe80::"), ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("::ffff:192.0.2.1", "::ffff:c000:201"), ("0:0:0:0:0:0:0:0", "::"),
        ]
        for (input, canonical) in cases {
            XCTAssertEqual(IPAddress(input)?.description, canonical, input)
            XCTAssertEqual(IPAddress(input)?.bytes.count, 16, input)
        }
    }

    func testIPv6Refusals() {
        for text in [":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "::g", "1:2:3:4:5:6:7:8::",
                     ":1::", "1:", "::1.2.3", "::1.2.3.4:5", "fe80::1%eth0", "[::1]"] {
            XCTAssertNil(IPAddress(text), text)
        }
    }

    func testMappedAddressesUnmap() {
        XCTAssertEqual(IPAddress("::ffff:192.0.2.1")?.unmapped, IPAddress("192.0.2.1"))
        XCTAssertEqual(IPAddress("::1")?.unmapped, IPAddress("::1"))
        XCTAssertEqual(IPAddress("192.0.2.1")?.unmapped, IPAddress("192.0.2.1"))
    }

    func testEndpoints() {
        XCTAssertEqual(IPEndpoint("192.0.2.1:443")?.description, "192.0.2.1:443")
        XCTAssertEqual(IPEndpoint("[2001:db8::1]:8080")?.description, "[2001:db8::1]:8080")
        XCTAssertEqual(IPEndpoint("[2001:db8::1]:8080")?.port, 8080)
        for text in ["192.0.2.1", "2001:db8::1:80", "[::1]", "[::1]:", "1.2.3.4:65536", "1.2.3.4:+1", "[::1]x:1", "1.2.3.4:0x10"] {
            XCTAssertNil(IPEndpoint(text), text)
        }
    }
}
