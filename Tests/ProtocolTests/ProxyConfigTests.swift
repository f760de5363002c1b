import Protocol
import XCTest

/// `trusted_proxies`, `proxy_protocol` and `proxy_header_timeout` (issue #15).
final class ProxyConfigTests: XCTestCase {
    private func parse(_ text: String) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig.parse(text: text, file: "/etc/fastgw/gateway.toml") { _ in "" }
    }

    private let base = """
        [tunnel]
        cert = "c"
        key = "k"
        [[agent]]
        name = "a"
        token = "0123456789abcdef0123"
        allow_ports = [2222]

        """

    func testKeysAreRead() throws {
        let config = try parse("""
            [gateway]
            trusted_proxies = ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"]
            proxy_protocol = true
            [limits]
            proxy_header_timeout = "2s"
            [[listener]]
            name = "web"
            protocol = "http"
            listen = "0.0.0.0:80"
            proxy_protocol = true
            [[listener]]
            name = "plain"
            protocol = "http"
            listen = "0.0.0.0:81"
            \(base)
            """).get()
        XCTAssertEqual(config.trustedProxies.blocks.map(\.description), ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1/32"])
        XCTAssertEqual(config.limits.proxyHeaderTimeout, .seconds(2))
        XCTAssertTrue(config.acceptsProxyHeader(listener: "web"))
        XCTAssertFalse(config.acceptsProxyHeader(listener: "plain"))
        XCTAssertTrue(config.acceptsProxyHeader(listener: "tcp-2222"), "[gateway] proxy_protocol covers allow_ports ports")
        XCTAssertFalse(config.acceptsProxyHeader(listener: "tunnel"))
    }

    func testDefaultsAreOff() throws {
        let config = try parse(base).get()
        XCTAssertTrue(config.trustedProxies.isEmpty)
        XCTAssertFalse(config.acceptsProxyHeader(listener: "tcp-2222"))
        XCTAssertEqual(config.limits.proxyHeaderTimeout, .seconds(5))
    }

    func testErrorsNameTheLine() {
        guard case .failure(let e) = parse("""
            [gateway]
            trusted_proxies = ["10.0.0.1/8", "nonsense"]
            [limits]
            proxy_header_timeout = "0s"
            [[listener]]
            name = "web"
            protocol = "https"
            listen = "0.0.0.0:443"
            proxy_protocol = true
            cert = "c"
            key = "k"
            \(base)
            """) else { return XCTFail("accepted") }
        let text = e.diagnostics.map(\.description)
        XCTAssertEqual(text.filter { $0.hasPrefix("/etc/fastgw/gateway.toml:2: trusted_proxies: ") }.count, 2, "\(text)")
        XCTAssertTrue(text.contains { $0.hasPrefix("/etc/fastgw/gateway.toml:4: proxy_header_timeout must be positive") }, "\(text)")
        XCTAssertTrue(text.contains { $0.hasPrefix("/etc/fastgw/gateway.toml:9: listener \"web\": proxy_protocol = true needs [gateway] trusted_proxies") }, "\(text)")
    }
}
