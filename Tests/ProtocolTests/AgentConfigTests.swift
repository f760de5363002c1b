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
}
