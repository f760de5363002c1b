import Protocol
import XCTest

final class LimitsConfigTests: XCTestCase {
    private func parse(_ text: String) -> Result<GatewayConfig, ConfigError> {
        GatewayConfigFixture().parse(text)
    }

    func testLimitsAreReadAndAbsentOnesLeftToTheDefaults() throws {
        XCTAssertEqual(try parse("").get().limits, LimitsConfig())
        let c = try parse("""
            [limits]
            max_connections = 10000
            max_connections_per_ip = 100
            max_tunnel_connections = 500
            max_tunnel_connections_per_ip = 8
            """).get().limits
        XCTAssertEqual(c.maxConnections, 10000)
        XCTAssertEqual(c.maxConnectionsPerIP, 100)
        XCTAssertEqual(c.maxTunnelConnections, 500)
        XCTAssertEqual(c.maxTunnelConnectionsPerIP, 8)
    }

    func testBadLimitsAreErrorsWithALine() {
        guard case .failure(let e) = parse("""
            [limits]
            max_connections = 0
            max_connections_per_ip = "many"
            max_conections = 5
            """) else { return XCTFail("accepted") }
        XCTAssertEqual(e.diagnostics.map(\.description), [
            "/etc/fastgw/gateway.toml:8: max_connections 0 out of range (1-16777216)",
            "/etc/fastgw/gateway.toml:9: max_connections_per_ip must be an integer",
            "/etc/fastgw/gateway.toml:10: unknown key \"max_conections\" in [limits]",
        ])
    }
}
