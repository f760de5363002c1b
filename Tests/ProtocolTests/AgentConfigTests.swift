import Protocol
import XCTest

final class AgentConfigTests: XCTestCase {
    private func parse(_ text: String) -> Result<AgentConfig, ConfigError> {
        AgentConfig.parse(text: text, file: "agent.toml") { _ in throw POSIXErrorStub(path: "") }
    }

    func testServicesAndDefaults() throws {
        let c = try parse("""
            [agent]
            name = "office-nas"
            token = "0123456789abcdef0123"
            gateways = ["gw.example.com:7443", "[::1]:7443"]
            [[service]]
            name = "ssh"
            type = "tcp"
            upstream = "127.0.0.1:22"
            remote_port = 2222
            [[service]]
            name = "app"
            upstream = "unix:/run/app.sock"
            remote_port = 8080
            connect_timeout = "1s"
            """).get()
        XCTAssertEqual(c.gateways, [HostPort(host: "gw.example.com", port: 7443), HostPort(host: "::1", port: 7443)])
        XCTAssertEqual(c.connections, 2)
        XCTAssertEqual(c.transport, .auto)
        XCTAssertEqual(c.services.map(\.upstream), [.tcp(HostPort(host: "127.0.0.1", port: 22)), .unix(path: "/run/app.sock")])
        XCTAssertEqual(c.services[1].connectTimeout, .seconds(1))
    }

    func testServiceErrors() {
        guard case .failure(let e) = parse("""
            [agent]
            name = "bad name"
            token = "0123456789abcdef0123"
            gateways = ["gw:7443"]
            transport = "carrier-pigeon"
            [[service]]
            name = "ssh"
            upstream = "localhost"
            [[service]]
            name = "ssh"
            upstream = "127.0.0.1:1"
            remote_port = 2
            """) else { return XCTFail("should fail") }
        XCTAssertEqual(e.diagnostics.map(\.description), [
            "agent.toml:2: agent name \"bad name\" is invalid: use 1-64 characters from A-Z a-z 0-9 . _ -",
            "agent.toml:5: transport \"carrier-pigeon\" is not one of: auto, h2, websocket",
            "agent.toml:8: service \"ssh\": upstream \"localhost\": missing :port (or unix:/path)",
            "agent.toml:6: service \"ssh\": remote_port is required for a tcp service",
            "agent.toml:10: service \"ssh\": duplicate service name \"ssh\"",
        ])
    }

    func testHTTPServices() throws {
        let base = """
            [agent]
            name = "a"
            token = "0123456789abcdef0123"
            gateways = ["gw:7443"]
            [[service]]
            name = "web"
            type = "http"
            upstream = "unix:/run/app.sock"
            hosts = ["app.example.com", "*.app.example.com"]
            path_prefix = "/api/"
            max_idle_connections = 4
            idle_timeout = "10s"
            """
        let c = try parse(base).get()
        let web = try XCTUnwrap(c.service(named: "web"))
        XCTAssertEqual(web.kind, .http)
        XCTAssertEqual(web.hosts, ["app.example.com", "*.app.example.com"])
        XCTAssertEqual(web.pathPrefix, "/api")
        XCTAssertNil(web.remotePort)
        XCTAssertEqual(web.maxIdleConnections, 4)
        XCTAssertEqual(web.idleTimeout, .seconds(10))
        XCTAssertEqual(ServiceDeclaration(web), ServiceDeclaration(
            name: "web", type: "http", remotePort: nil, hosts: ["app.example.com", "*.app.example.com"], pathPrefix: "/api"))
        guard case .failure(let e) = parse(base + """

            remote_port = 80
            [[service]]
            name = "bad"
            type = "http"
            upstream = "127.0.0.1:1"
            hosts = ["*x.com"]
            path_prefix = "api"
            [[service]]
            name = "tcp"
            upstream = "127.0.0.1:1"
            remote_port = 1
            hosts = ["a.com"]
            [[service]]
            name = "nohosts"
            type = "http"
            upstream = "127.0.0.1:1"
            """) else { return XCTFail("should fail") }
        XCTAssertEqual(e.diagnostics.map(\.description), [
            "agent.toml:13: service \"web\": remote_port applies to tcp and udp services only; http services are routed by hosts",
            "agent.toml:18: service \"bad\": \"*x.com\" is not a host name or *.suffix pattern",
            "agent.toml:19: service \"bad\": path_prefix \"api\" must start with /",
            "agent.toml:24: service \"tcp\": hosts applies to http services only (this one has type \"tcp\")",
            "agent.toml:25: service \"nohosts\": hosts is required for an http service, e.g. [\"app.example.com\"]",
        ])
    }
}

extension AgentConfigTests {
    func testProxyProtocolAndForwardedHeaders() throws {
        let head = """
            [agent]
            name = "a"
            token = "0123456789abcdef0123"
            gateways = ["gw:7443"]

            """
        let c = try parse(head + """
            [[service]]
            name = "ssh"
            upstream = "127.0.0.1:22"
            remote_port = 2222
            proxy_protocol = "v2"
            [[service]]
            name = "web"
            type = "http"
            upstream = "127.0.0.1:80"
            hosts = ["a.example"]
            proxy_protocol = "v1"
            forwarded_headers = ["x-real-ip", "forwarded"]
            [[service]]
            name = "plain"
            type = "http"
            upstream = "127.0.0.1:81"
            hosts = ["b.example"]
            forwarded_headers = []
            """).get()
        XCTAssertEqual(c.service(named: "ssh")?.proxyProtocol, .v2)
        XCTAssertEqual(c.service(named: "web")?.proxyProtocol, .v1)
        XCTAssertEqual(c.service(named: "web")?.forwardedHeaders, ForwardingSelection([.xRealIP, .forwarded]))
        XCTAssertNil(c.service(named: "plain")?.proxyProtocol)
        XCTAssertEqual(c.service(named: "plain")?.forwardedHeaders, ForwardingSelection([]))
        XCTAssertEqual(c.service(named: "ssh")?.forwardedHeaders, .default)

        guard case .failure(let e) = parse(head + """
            [[service]]
            name = "grpc"
            type = "http"
            upstream = "127.0.0.1:80"
            hosts = ["a.example"]
            upstream_protocol = "h2c"
            proxy_protocol = "v1"
            [[service]]
            name = "ssh"
            upstream = "127.0.0.1:22"
            remote_port = 2222
            proxy_protocol = "v3"
            forwarded_headers = ["forwarded"]
            [[service]]
            name = "web"
            type = "http"
            upstream = "127.0.0.1:80"
            hosts = ["b.example"]
            forwarded_headers = ["x-forwarded", "via", "x-forwarded"]
            [[service]]
            name = "web2"
            type = "http"
            upstream = "127.0.0.1:80"
            hosts = ["c.example"]
            forwarded_headers = "forwarded"
            proxy_protocol = true
            """) else { return XCTFail("should fail") }
        XCTAssertEqual(e.diagnostics.map(\.description), [
            "agent.toml:11: service \"grpc\": proxy_protocol needs upstream_protocol = \"http1\" (an h2c connection carries many clients' requests)",
            "agent.toml:17: service \"ssh\": forwarded_headers applies to http services only (this one has type \"tcp\")",
            "agent.toml:16: service \"ssh\": proxy_protocol \"v3\" is not one of: v1, v2",
            "agent.toml:23: service \"web\": forwarded_headers: \"via\" is not one of: forwarded, x-forwarded, x-real-ip",
            "agent.toml:23: service \"web\": forwarded_headers: \"x-forwarded\" is listed twice",
            "agent.toml:29: service \"web2\": forwarded_headers must be an array of strings",
            "agent.toml:30: service \"web2\": proxy_protocol must be a string",
        ])
    }
}
