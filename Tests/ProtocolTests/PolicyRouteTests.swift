import XCTest

@testable import Protocol

/// `[[route_policy]]` lookup: every match applies, least specific first.
final class RoutePolicyTableTests: XCTestCase {
    private func host(_ s: String) -> HostPattern { try! HostPattern.parse(s).get() }

    private var table: RoutePolicyTable {
        RoutePolicyTable([
            RoutePolicy(hosts: [host("admin.example.com")], pathPrefix: "/api", policies: ["api-rate"]),
            RoutePolicy(hosts: [host("admin.example.com")], policies: ["office"]),
            RoutePolicy(hosts: [host("*.example.com")], policies: ["everyone", "office"]),
            RoutePolicy(hosts: [host("*.admin.example.com"), host("other.test")], pathPrefix: "/x", ports: [2222], policies: ["deep"]),
            RoutePolicy(hosts: [], ports: [2222, 3333], policies: ["ssh"]),
        ])
    }

    func testASubPathAddsRulesAndNeverLiftsTheHostsOnes() {
        XCTAssertEqual(table.policies(host: "admin.example.com", path: "/api/v1"), ["everyone", "office", "api-rate"])
        XCTAssertEqual(table.policies(host: "admin.example.com", path: "/apix"), ["everyone", "office"])
        XCTAssertEqual(table.policies(host: "admin.example.com", path: "/"), ["everyone", "office"])
        XCTAssertEqual(table.policies(host: "www.example.com", path: "/api"), ["everyone", "office"])
    }

    func testEmptySegmentsAndPathParametersCannotSlipPastAPrefix() {
        XCTAssertEqual(table.policies(host: "admin.example.com", path: "//api//v1"), ["everyone", "office", "api-rate"])
        XCTAssertEqual(table.policies(host: "admin.example.com", path: "/api;jsessionid=1"), ["everyone", "office", "api-rate"])
        XCTAssertEqual(table.policies(host: "admin.example.com", path: "/apix?a=//api"), ["everyone", "office"])
        XCTAssertEqual(table.policies(host: "other.test", path: "/x?q"), ["deep"])
    }

    func testWildcardsComeBeforeExactNamesAndShortPrefixesBeforeLongOnes() {
        XCTAssertEqual(table.policies(host: "a.admin.example.com", path: "/x/y"), ["everyone", "office", "deep"])
        XCTAssertEqual(table.policies(host: "other.test", path: "/x"), ["deep"])
        XCTAssertEqual(table.policies(host: "other.test", path: "/"), [])
        XCTAssertEqual(table.policies(host: "example.com", path: "/"), [])
    }

    func testPortsMatchInConfigOrder() {
        XCTAssertEqual(table.policies(port: 2222), ["deep", "ssh"])
        XCTAssertEqual(table.policies(port: 3333), ["ssh"])
        XCTAssertEqual(table.policies(port: 80), [])
    }
}

final class RoutePolicyConfigTests: XCTestCase {
    private let base = """
        [tunnel]
        cert = "gw.crt"
        key = "gw.key"
        [[policy]]
        name = "office"
        allow = ["192.0.2.0/24"]
        [[policy]]
        name = "rate"
        requests_per_second = 5
        [[agent]]
        name = "a"
        token = "0123456789abcdef0123"
        allow_ports = [2222]
        allow_hosts = ["*.example.com"]

        """

    private func parse(_ text: String) -> Result<GatewayConfig, ConfigError> {
        GatewayConfigFixture(base: base).parse(text)
    }

    private func errors(_ text: String) -> [String] {
        GatewayConfigFixture(base: base).errors(text)
    }

    func testAgentGrantsAndRoutePoliciesAreRead() throws {
        let c = try parse("""
            [[agent]]
            name = "b"
            token = "abcdef0123456789abcd"
            policy = ["office", "rate"]
            [[route_policy]]
            hosts = ["admin.example.com", "*.admin.example.com"]
            path_prefix = "/api/"
            policy = "rate"
            [[route_policy]]
            ports = [2222]
            policy = ["office"]
            """).get()
        XCTAssertEqual(c.agent(named: "b")?.policies, ["office", "rate"])
        XCTAssertEqual(c.agent(named: "a")?.policies, [])
        XCTAssertEqual(c.routePolicies.entries, [
            RoutePolicy(hosts: [.exact("admin.example.com"), .wildcard(suffix: "admin.example.com")], pathPrefix: "/api", policies: ["rate"]),
            RoutePolicy(hosts: [], ports: [2222], policies: ["office"]),
        ])
    }

    func testMistakesAreErrorsWithTheirLine() {
        XCTAssertEqual(errors("""
            [[agent]]
            name = "b"
            token = "abcdef0123456789abcd"
            policy = "nope"
            [[route_policy]]
            policy = "office"
            [[route_policy]]
            path_prefix = "/x"
            policy = "office"
            [[route_policy]]
            hosts = ["a.example.com"]
            path_prefix = "/x"
            policy = "ghost"
            [[route_policy]]
            hosts = ["A.example.com"]
            path_prefix = "/x/"
            policy = "rate"
            [[route_policy]]
            ports = [70000]
            policy = "office"
            [[route_policy]]
            ports = [4444]
            hosts = ["bad host"]
            [[route_policy]]
            ports = [2222]
            policy = "office"
            [[route_policy]]
            ports = [2222]
            policy = "rate"
            """), [
            "/etc/fastgw/gateway.toml:20: route_policy: give it hosts (with an optional path_prefix) or ports",
            "/etc/fastgw/gateway.toml:22: route_policy: path_prefix needs hosts (a path belongs to a host)",
            "/etc/fastgw/gateway.toml:29: route_policy: host a.example.com with path_prefix /x already has a [[route_policy]] (line 27): name both policies in one",
            "/etc/fastgw/gateway.toml:33: route_policy: ports: 70000 out of range (1-65535)",
            "/etc/fastgw/gateway.toml:37: route_policy: hosts: \"bad host\" is not a host name or *.suffix pattern",
            "/etc/fastgw/gateway.toml:35: route_policy: policy is required (the [[policy]] names to apply)",
            "/etc/fastgw/gateway.toml:42: route_policy: port 2222 already has a [[route_policy]] (line 40): name both policies in one",
            "/etc/fastgw/gateway.toml:27: route_policy: policy \"ghost\" is not defined by any [[policy]]",
            "/etc/fastgw/gateway.toml:18: agent \"b\": policy \"nope\" is not defined by any [[policy]]",
        ])
    }

    func testPortsMustBeServedByTheGateway() {
        XCTAssertEqual(errors("""
            [[route_policy]]
            ports = [2222, 4444]
            policy = "office"
            """), [
            "/etc/fastgw/gateway.toml:16: route_policy: port 4444 is not a TCP port of this gateway (no agent's allow_ports names it)",
        ])
    }
}
