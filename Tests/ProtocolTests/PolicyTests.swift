import XCTest

@testable import Protocol

final class TokenBucketTests: XCTestCase {
    private let rate = RateLimit(perSecond: 4, burst: 5)

    func testABurstPassesThenTheRateWithRetryAfterRoundedUp() {
        var b = TokenBucket(burst: 5, now: 100)
        for left in (0..<5).reversed() { XCTAssertEqual(b.take(rate, now: 100), .taken(remaining: left)) }
        XCTAssertEqual(b.take(rate, now: 100), .empty(retryAfter: 1))
        // A quarter second brings one token back, no more.
        XCTAssertEqual(b.take(rate, now: 100.25), .taken(remaining: 0))
        XCTAssertEqual(b.take(rate, now: 100.25), .empty(retryAfter: 1))
        // A long pause fills the bucket to its burst only.
        XCTAssertEqual(b.take(rate, now: 1000), .taken(remaining: 4))
    }

    func testASlowRateWaitsWholeSecondsAndAClockGoingBackRefillsNothing() {
        let slow = RateLimit(perSecond: 0.25, burst: 1)
        var b = TokenBucket(burst: 1, now: 10)
        XCTAssertEqual(b.take(slow, now: 10), .taken(remaining: 0))
        XCTAssertEqual(b.take(slow, now: 10), .empty(retryAfter: 4))
        XCTAssertEqual(b.take(slow, now: 5), .empty(retryAfter: 4))
        XCTAssertEqual(b.take(slow, now: 13), .empty(retryAfter: 1))
        XCTAssertEqual(b.take(slow, now: 14), .taken(remaining: 0))
    }

    func testTheAdmittedCountOverTenSecondsIsRateTimesTimePlusBurst() {
        var b = TokenBucket(burst: 20, now: 0)
        let r = RateLimit(perSecond: 50, burst: 20)
        var admitted = 0
        // 250 attempts a second (5× the rate) for 10 s.
        for i in 0..<2500 where b.take(r, now: Double(i) / 250) != .empty(retryAfter: 1) { admitted += 1 }
        XCTAssertEqual(admitted, 20 + 500, accuracy: 2)
    }
}

final class PolicyStateTests: XCTestCase {
    private func address(_ text: String) -> IPAddress { IPAddress(text)! }
    private func key(_ text: String) -> ClientKey { ClientKey(addressBytes: IPAddress(text)!.bytes)! }
    private func cidrs(_ texts: [String]) -> CIDRSet { CIDRSet(texts.map { try! CIDR.parse($0).get() }) }

    func testDenyWinsAndAnEmptyAllowListAdmitsEveryone() {
        var p = AccessPolicy(name: "office")
        p.deny = cidrs(["10.1.2.3", "2001:db8:bad::/48"])
        XCTAssertTrue(p.admits(address("192.0.2.1")))
        XCTAssertFalse(p.admits(address("10.1.2.3")))
        XCTAssertFalse(p.admits(address("::ffff:10.1.2.3")))
        XCTAssertFalse(p.admits(address("2001:db8:bad::7")))
        p.allow = cidrs(["10.0.0.0/8", "2001:db8::/32"])
        XCTAssertFalse(p.admits(address("192.0.2.1")))
        XCTAssertTrue(p.admits(address("10.9.9.9")))
        XCTAssertFalse(p.admits(address("10.1.2.3")), "deny wins over a broader allow")
        XCTAssertTrue(p.admits(address("2001:db8:1::1")))
        XCTAssertFalse(p.admits(address("2001:db8:bad::1")))
    }

    func testRequestsAreLimitedPerClientWithRateLimitFields() {
        var p = AccessPolicy(name: "api")
        p.requests = RateLimit(perSecond: 2, burst: 2)
        var s = PolicyState(policy: p)
        let a = address("192.0.2.1"), b = address("192.0.2.2")
        XCTAssertEqual(s.request(from: a, key: key("192.0.2.1"), now: 0), .allow)
        XCTAssertEqual(s.request(from: a, key: key("192.0.2.1"), now: 0), .allow)
        let refused = s.request(from: a, key: key("192.0.2.1"), now: 0)
        guard case .limit("api", let l) = refused else { return XCTFail("\(refused)") }
        XCTAssertEqual(l.kind, .requests)
        XCTAssertEqual(l.retryAfter, 1)
        XCTAssertEqual(l.headerFields(policy: "api").map { "\($0.0): \($0.1)" }, [
            "RateLimit-Policy: \"api\";q=2;w=1", "RateLimit: \"api\";r=0;t=1",
        ])
        XCTAssertEqual(s.request(from: b, key: key("192.0.2.2"), now: 0), .allow, "another client is not affected")
        // Two IPv6 addresses of one /64 share a bucket.
        XCTAssertEqual(s.request(from: address("2001:db8::1"), key: key("2001:db8::1"), now: 0), .allow)
        XCTAssertEqual(s.request(from: address("2001:db8::2"), key: key("2001:db8::2"), now: 0), .allow)
        XCTAssertNotEqual(s.request(from: address("2001:db8::3"), key: key("2001:db8::3"), now: 0), .allow)
    }

    func testOpenConnectionsAreCappedAndGivenBack() {
        var p = AccessPolicy(name: "ssh")
        p.maxConnectionsPerClient = 2
        p.connections = RateLimit(perSecond: 1, burst: 3)
        var s = PolicyState(policy: p)
        let a = address("198.51.100.7"), k = key("198.51.100.7")
        XCTAssertEqual(s.connection(from: a, key: k, now: 0), .allow)
        XCTAssertEqual(s.connection(from: a, key: k, now: 0), .allow)
        guard case .limit(_, let l) = s.connection(from: a, key: k, now: 0) else { return XCTFail() }
        XCTAssertEqual(l.kind, .openConnections)
        XCTAssertEqual(s.openConnections(of: k), 2)
        s.closed(k)
        XCTAssertEqual(s.connection(from: a, key: k, now: 0), .allow, "the refused one took no token: one is left")
        s.closed(k)
        guard case .limit(_, let r) = s.connection(from: a, key: k, now: 0) else { return XCTFail() }
        XCTAssertEqual(r.kind, .connections)
        XCTAssertEqual(s.connection(from: a, key: k, now: 1), .allow)
    }

    func testADeniedClientIsHeldToTheLimitsToo() {
        // An HTTP connection from a denied address stays open to be answered 403: it is
        // capped, rate-limited and counted like any other, and its requests spend tokens.
        var p = AccessPolicy(name: "office")
        p.deny = cidrs(["203.0.113.9"])
        p.maxConnectionsPerClient = 1
        p.connections = RateLimit(perSecond: 1, burst: 2)
        p.requests = RateLimit(perSecond: 1, burst: 2)
        var s = PolicyState(policy: p)
        let a = address("203.0.113.9"), k = key("203.0.113.9")
        XCTAssertEqual(s.connection(from: a, key: k, now: 0), .deny(policy: "office"), "TCP: refused, nothing counted")
        XCTAssertEqual(s.openConnections(of: k), 0)
        XCTAssertEqual(s.connection(from: a, key: k, now: 0, keepDenied: true), .deny(policy: "office"))
        XCTAssertEqual(s.openConnections(of: k), 1)
        guard case .limit(_, let cap) = s.connection(from: a, key: k, now: 0, keepDenied: true) else { return XCTFail() }
        XCTAssertEqual(cap.kind, .openConnections)
        s.closed(k)
        XCTAssertEqual(s.connection(from: a, key: k, now: 0, keepDenied: true), .deny(policy: "office"))
        s.closed(k)
        guard case .limit(_, let rate) = s.connection(from: a, key: k, now: 0, keepDenied: true) else { return XCTFail() }
        XCTAssertEqual(rate.kind, .connections)
        XCTAssertEqual(s.request(from: a, key: k, now: 0), .deny(policy: "office"))
        XCTAssertEqual(s.request(from: a, key: k, now: 0), .deny(policy: "office"))
        guard case .limit(_, let requests) = s.request(from: a, key: k, now: 0) else { return XCTFail() }
        XCTAssertEqual(requests.kind, .requests)
    }

    func testTheClientTableIsBoundedWhateverTheNumberOfClients() {
        var p = AccessPolicy(name: "api")
        p.requests = RateLimit(perSecond: 1, burst: 1)
        var s = PolicyState(policy: p, clientCapacity: 1000)
        let hot = address("192.0.2.1"), hotKey = key("192.0.2.1")
        XCTAssertEqual(s.request(from: hot, key: hotKey, now: 0), .allow)
        for i in 0..<100_000 {
            let a = IPAddress(bytes: [10, UInt8(i >> 16), UInt8(i >> 8 & 0xff), UInt8(i & 0xff)])!
            _ = s.request(from: a, key: ClientKey(addressBytes: a.bytes)!, now: 0)
            if i % 500 == 0 { _ = s.request(from: hot, key: hotKey, now: 0) }
        }
        XCTAssertEqual(s.trackedClients, 1000)
        // The hot client, seen often, kept its empty bucket through the flood.
        XCTAssertNotEqual(s.request(from: hot, key: hotKey, now: 0), .allow)
    }
}

final class PolicyConfigTests: XCTestCase {
    private func parse(_ text: String) -> Result<GatewayConfig, ConfigError> {
        GatewayConfigFixture().parse(text)
    }

    private func errors(_ text: String) -> [String] {
        GatewayConfigFixture().errors(text)
    }

    func testPoliciesAndListenerAttachmentsAreRead() throws {
        let c = try parse("""
            [[policy]]
            name = "office"
            allow = ["192.0.2.0/24", "2001:db8::/32"]
            deny = ["192.0.2.66"]
            [[policy]]
            name = "api"
            requests_per_second = 50
            burst = 100
            connections_per_second = 5
            max_connections_per_client = 20
            [[listener]]
            name = "web"
            protocol = "http"
            listen = "0.0.0.0:80"
            policy = ["office", "api"]
            [[listener]]
            name = "ssh"
            listen = "0.0.0.0:2222"
            policy = "office"
            """).get()
        XCTAssertEqual(c.policies.map(\.name), ["office", "api"])
        let api = try XCTUnwrap(c.policy(named: "api"))
        XCTAssertEqual(api.requests, RateLimit(perSecond: 50, burst: 100))
        XCTAssertEqual(api.connections, RateLimit(perSecond: 5, burst: 100))
        XCTAssertEqual(api.maxConnectionsPerClient, 20)
        XCTAssertEqual(c.policy(named: "office")?.deny.blocks.map(\.description), ["192.0.2.66/32"])
        XCTAssertEqual(c.listeners.map(\.policies), [["office", "api"], ["office"]])
    }

    func testTheBurstDefaultsToTheRate() throws {
        let c = try parse("[[policy]]\nname = \"p\"\nrequests_per_second = 7\n").get()
        XCTAssertEqual(c.policies[0].requests, RateLimit(perSecond: 7, burst: 7))
    }

    func testMistakesAreErrorsWithTheirLine() {
        XCTAssertEqual(errors("""
            [[policy]]
            name = "a"
            allow = ["10.0.0.1/8", "nonsense"]
            [[policy]]
            name = "b"
            requests_per_second = 0
            [[policy]]
            name = "empty"
            [[policy]]
            name = "a"
            burst = 5
            deny = ["10.0.0.0/8"]
            bandwith = "10MiB"
            [[listener]]
            name = "web"
            protocol = "http"
            listen = "0.0.0.0:80"
            policy = ["nope", "b", "b"]
            [[listener]]
            name = "w2"
            protocol = "http"
            listen = "0.0.0.0:81"
            policy = []
            """), [
            "/etc/fastgw/gateway.toml:9: policy \"a\": allow: \"10.0.0.1/8\": host bits are set after /8 (the block is 10.0.0.0/8)",
            "/etc/fastgw/gateway.toml:9: policy \"a\": allow: \"nonsense\": not an address or block (examples: 192.0.2.7, 10.0.0.0/8, 2001:db8::/32)",
            "/etc/fastgw/gateway.toml:12: policy \"b\": requests_per_second 0 out of range (1-1000000)",
            "/etc/fastgw/gateway.toml:14: policy \"empty\": policy \"empty\" has no rule: give it allow, deny, a rate, max_connections_per_client, bandwidth, basic_auth or forward_auth",
            "/etc/fastgw/gateway.toml:16: policy \"a\": duplicate policy name \"a\"",
            "/etc/fastgw/gateway.toml:17: policy \"a\": burst needs requests_per_second or connections_per_second",
            "/etc/fastgw/gateway.toml:19: policy \"a\": unknown key \"bandwith\" in [policy]",
            "/etc/fastgw/gateway.toml:24: listener \"web\": policy names one [[policy]] twice",
            "/etc/fastgw/gateway.toml:29: listener \"w2\": policy must name at least one [[policy]]",
            "/etc/fastgw/gateway.toml:24: listener \"web\": policy \"nope\" is not defined by any [[policy]]",
        ])
    }
}

extension PolicyConfigTests {
    private func bandwidth(_ value: String) -> Result<GatewayConfig, ConfigError> {
        parse("[[policy]]\nname = \"slow\"\nbandwidth = \(value)\n")
    }

    func testBandwidthIsASizeASecondAndAloneMakesAPolicy() throws {
        XCTAssertEqual(try bandwidth("\"10MiB\"").get().policies[0].bandwidth, 10 << 20)
        XCTAssertEqual(try bandwidth("\"500KiB\"").get().policies[0].bandwidth, 500 << 10)
        XCTAssertEqual(try bandwidth("\"1GiB\"").get().policies[0].bandwidth, 1 << 30)
        XCTAssertEqual(try bandwidth("4096").get().policies[0].bandwidth, 4096)
    }

    func testOutOfRangeAndMalformedBandwidthsAreErrorsWithTheirLine() {
        for (value, message) in [
            ("512", "bandwidth 512 out of range (1024-107374182400 bytes)"),
            ("\"101GiB\"", "bandwidth 108447924224 out of range (1024-107374182400 bytes)"),
            ("\"10 Mbit\"", "bandwidth must be a size such as 65536 or \"4MiB\""),
            ("true", "bandwidth must be a size such as 65536 or \"4MiB\""),
        ] {
            guard case .failure(let e) = bandwidth(value) else { return XCTFail("\(value) accepted") }
            XCTAssertEqual(e.diagnostics.map(\.description), ["/etc/fastgw/gateway.toml:9: policy \"slow\": \(message)"])
        }
    }
}

/// The bytes per client that docs/configuration.md and fastgw.toml(5) state for a policy's table.
final class PolicyFootprintTests: XCTestCase {
    func testAClientEntryStaysWithinTheStatedSize() {
        // A slot (key, two optional buckets, mark) of 64 bytes; the index adds a key and an Int
        // (24 bytes) in a table of twice as many buckets (131,072 for 65,536): about 112 bytes
        // a client.
        XCTAssertLessThanOrEqual(MemoryLayout<ClockTable<ClientKey, PolicyState.Buckets>.Slot?>.stride, 64)
    }
}
