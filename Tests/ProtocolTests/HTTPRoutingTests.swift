import Protocol
import XCTest

final class HTTPRoutingTests: XCTestCase {
    private func grant(_ name: String, hosts: [String]) -> GatewayConfig.AgentGrant {
        GatewayConfig.AgentGrant(name: name, token: String(repeating: "t", count: 20), allowPorts: [], allowHosts: hosts)
    }

    private func http(_ name: String, _ hosts: [String], prefix: String? = nil) -> ServiceDeclaration {
        ServiceDeclaration(name: name, type: "http", remotePort: nil, hosts: hosts, pathPrefix: prefix)
    }

    func testHostPatterns() throws {
        let wild = try HostPattern.parse("*.Office.example.com").get()
        XCTAssertEqual(wild, .wildcard(suffix: "office.example.com"))
        XCTAssertTrue(wild.matches("nas.office.example.com"))
        XCTAssertTrue(wild.matches("a.b.office.example.com"))
        XCTAssertFalse(wild.matches("office.example.com"))
        XCTAssertFalse(wild.matches("xoffice.example.com"))
        XCTAssertTrue(wild.covers(.exact("nas.office.example.com")))
        XCTAssertTrue(wild.covers(.wildcard(suffix: "lab.office.example.com")))
        XCTAssertFalse(HostPattern.exact("a.example.com").covers(wild))
        XCTAssertEqual(HostPattern.normalize("NAS.office.example.com.:8443"), "nas.office.example.com")
        XCTAssertEqual(HostPattern.normalize("[::1]:80"), "[::1]")
        for bad in ["", "*.", "a..b", "-a.com", "a_b.com", "*.*.com", "a.com:80"] {
            XCTAssertNil(try? HostPattern.parse(bad).get(), bad)
        }
    }

    func testRoutesByHostSpecificityThenLongestSegmentPrefix() {
        var table = HTTPRouteTable<Int>()
        _ = table.register(connection: 1, grant: grant("a", hosts: ["*.example.com"]), services: [
            http("site", ["*.example.com"]),
            http("app", ["app.example.com"]),
        ])
        _ = table.register(connection: 2, grant: grant("b", hosts: ["app.example.com"]), services: [
            http("api", ["app.example.com"], prefix: "/api/"),
        ])
        XCTAssertEqual(table.entries(host: "www.example.com", path: "/").map(\.service), ["site"])
        XCTAssertEqual(table.entries(host: "APP.example.com:443", path: "/index.html").map(\.service), ["app"])
        XCTAssertEqual(table.entries(host: "app.example.com", path: "/api").map(\.service), ["api"])
        XCTAssertEqual(table.entries(host: "app.example.com", path: "/api/v1?x=1").map(\.service), ["api"])
        XCTAssertEqual(table.entries(host: "app.example.com", path: "/apix").map(\.service), ["app"])
        XCTAssertEqual(table.entries(host: "example.com", path: "/"), [])
        XCTAssertEqual(table.entries(host: "other.org", path: "/"), [])
        table.remove(connection: 2)
        XCTAssertEqual(table.entries(host: "app.example.com", path: "/api").map(\.service), ["app"])
    }

    func testClaimsAreAuthorisedAndConflictsRejectedWithAReason() {
        var table = HTTPRouteTable<Int>()
        let first = table.register(connection: 1, grant: grant("a", hosts: ["*.example.com"]), services: [
            http("web", ["www.example.com"]),
            http("outside", ["www.other.org"]),
            http("nohosts", []),
            http("badprefix", ["x.example.com"], prefix: "api"),
            ServiceDeclaration(name: "ssh", type: "tcp", remotePort: 22),
        ])
        XCTAssertEqual(first.accepted, ["web"])
        XCTAssertEqual(first.rejected.map(\.reason), [
            "host \"www.other.org\" is not in allow_hosts of agent \"a\"",
            "http service needs hosts",
            "path_prefix \"api\" must start with /",
        ])
        // Another agent: the same claim under another name conflicts, the same service replicates.
        let second = table.register(connection: 2, grant: grant("b", hosts: ["www.example.com"]), services: [
            http("blog", ["www.example.com"]),
        ])
        XCTAssertEqual(second.rejected.map(\.reason), ["host \"www.example.com\" with path prefix \"/\" is already served as service \"web\" by agent \"a\""])
        let replica = table.register(connection: 3, grant: grant("b", hosts: ["www.example.com"]), services: [http("web", ["www.example.com"])])
        XCTAssertEqual(replica.accepted, ["web"])
        XCTAssertEqual(Set(table.entries(host: "www.example.com", path: "/").map(\.connection)), [1, 3])
    }

    func testDeclarationsWithHostsSurviveTheControlStream() throws {
        let message = ControlMessage.register([http("web", ["a.example.com", "*.b.example.com"], prefix: "/api")])
        var framer = LineFramer()
        let line = try framer.feed(message.encoded())[0]
        XCTAssertEqual(try ControlMessage.decode(line), message)
    }

    func testBestHostMatchPrefersExactThenLongestSuffix() {
        let patterns: [HostPattern] = [.wildcard(suffix: "example.com"), .exact("a.example.com"), .wildcard(suffix: "b.example.com")]
        XCTAssertEqual(HostPattern.bestMatch(in: patterns, for: "a.example.com"), 1)
        XCTAssertEqual(HostPattern.bestMatch(in: patterns, for: "x.b.example.com"), 2)
        XCTAssertEqual(HostPattern.bestMatch(in: patterns, for: "c.example.com"), 0)
        XCTAssertNil(HostPattern.bestMatch(in: patterns, for: "example.com"))
    }
}
