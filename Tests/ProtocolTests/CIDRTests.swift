import XCTest
@testable import Protocol

final class CIDRTests: XCTestCase {
    private func cidr(_ text: String) throws -> CIDR { try CIDR.parse(text).get() }

    func testParsesBlocksAndBareAddresses() throws {
        XCTAssertEqual(try cidr("10.0.0.0/8").description, "10.0.0.0/8")
        XCTAssertEqual(try cidr("2001:db8::/32").description, "2001:db8::/32")
        XCTAssertEqual(try cidr("192.0.2.7").description, "192.0.2.7/32")
        XCTAssertEqual(try cidr("2001:db8::1").description, "2001:db8::1/128")
        XCTAssertEqual(try cidr("0.0.0.0/0").description, "0.0.0.0/0")
        XCTAssertEqual(try cidr("::/0").description, "::/0")
        // IPv4-mapped blocks are the IPv4 block they name.
        XCTAssertEqual(try cidr("::ffff:10.0.0.0/104").description, "10.0.0.0/8")
    }

    func testRefusesHostBitsAndNonsense() {
        for text in ["10.0.0.1/8", "2001:db8::1/32", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/08x",
                     "host/8", "", "/8", "10.0.0.0/8/8", "10.0.0.0/ 8", "10.0.0.0/0008"] {
            XCTAssertThrowsError(try CIDR.parse(text).get(), text)
        }
        if case .failure(let e) = CIDR.parse("10.0.0.1/8") {
            XCTAssertTrue(e.description.contains("10.0.0.0/8"), "the message names the block: \(e)")
        }
    }

    func testContainsAcrossFamiliesAndMappedAddresses() throws {
        let block = try cidr("10.0.0.0/8")
        XCTAssertTrue(block.contains(IPAddress("10.255.0.1")!))
        XCTAssertTrue(block.contains(IPAddress("::ffff:10.1.2.3")!))
        XCTAssertFalse(block.contains(IPAddress("11.0.0.0")!))
        XCTAssertFalse(block.contains(IPAddress("::a00:1")!), "an IPv4-compatible IPv6 address is not IPv4")
        let v6 = try cidr("2001:db8::/33")
        XCTAssertTrue(v6.contains(IPAddress("2001:db8:7fff::1")!))
        XCTAssertFalse(v6.contains(IPAddress("2001:db8:8000::1")!))
    }

    func testSetLongestPrefixMatch() throws {
        let set = CIDRSet(try ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "2001:db8::/32", "2001:db8:1::/48", "0.0.0.0/0"].map(cidr))
        XCTAssertEqual(set.longestMatch(IPAddress("10.1.2.3")!)?.description, "10.1.2.3/32")
        XCTAssertEqual(set.longestMatch(IPAddress("10.1.9.9")!)?.description, "10.1.0.0/16")
        XCTAssertEqual(set.longestMatch(IPAddress("::ffff:10.9.9.9")!)?.description, "10.0.0.0/8")
        XCTAssertEqual(set.longestMatch(IPAddress("192.0.2.1")!)?.description, "0.0.0.0/0")
        XCTAssertEqual(set.longestMatch(IPAddress("2001:db8:1:2::5")!)?.description, "2001:db8:1::/48")
        XCTAssertEqual(set.longestMatch(IPAddress("2001:db8:2::5")!)?.description, "2001:db8::/32")
        XCTAssertNil(set.longestMatch(IPAddress("2001:db9::1")!), "0.0.0.0/0 holds no IPv6 address")
        XCTAssertFalse(CIDRSet().contains(IPAddress("127.0.0.1")!))
    }

    func testSetAgreesWithLinearScan() throws {
        // Random blocks and addresses: the hashed lookup finds what checking every block finds.
        var rng = SystemRandomNumberGenerator()
        var blocks: [CIDR] = []
        for _ in 0..<300 {
            let v4 = Bool.random(using: &rng)
            let bytes = (0..<(v4 ? 4 : 16)).map { _ in UInt8.random(in: 0...3, using: &rng) }
            let length = Int.random(in: 0...(v4 ? 32 : 128), using: &rng)
            blocks.append(CIDR(network: IPAddress(bytes: CIDR.mask(bytes, length))!, prefixLength: length))
        }
        let set = CIDRSet(blocks)
        for _ in 0..<2000 {
            let v4 = Bool.random(using: &rng)
            let a = IPAddress(bytes: (0..<(v4 ? 4 : 16)).map { _ in UInt8.random(in: 0...3, using: &rng) })!
            let expected = blocks.filter { $0.contains(a) }.map(\.prefixLength).max()
            XCTAssertEqual(set.longestMatch(a)?.prefixLength, expected, "\(a)")
        }
    }

    func testDuplicatesAreKeptOnce() throws {
        let set = CIDRSet(try ["10.0.0.0/8", "10.0.0.0/8", "::ffff:10.0.0.0/104"].map(cidr))
        XCTAssertEqual(set.blocks.count, 1)
    }

    func testBroadBlocksAreThoseShorterThanSlash8OrSlash32() throws {
        for broad in ["0.0.0.0/0", "::/0", "::ffff:0:0/96", "0.0.0.0/7", "2000::/3", "2001:d00::/31"] {
            XCTAssertTrue(try cidr(broad).isBroad, broad)
        }
        for narrow in ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1", "::ffff:10.0.0.0/104"] {
            XCTAssertFalse(try cidr(narrow).isBroad, narrow)
        }
    }
}
