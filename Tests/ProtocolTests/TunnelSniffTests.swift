import Protocol
import XCTest

final class TunnelSniffTests: XCTestCase {
    private func verdict(_ text: String) -> TunnelSniff.Verdict { TunnelSniff.classify(Array(text.utf8)) }

    func testTheAgentsRequestLineIsTheTunnel() {
        XCTAssertEqual(verdict("GET /.fastgw/v1/tunnel HTTP/1.1\r\n"), .tunnel)
        XCTAssertEqual(verdict("GET /.fastgw/v1/tunnel "), .tunnel)
    }

    func testAnyDifferenceIsHTTPAsSoonAsItShows() {
        XCTAssertEqual(verdict("P"), .http)
        XCTAssertEqual(verdict("GET /index.html HTTP/1.1\r\n"), .http)
        XCTAssertEqual(verdict("GET /.fastgw/v1/tunnelx HTTP/1.1\r\n"), .http)
        XCTAssertEqual(verdict("GET /.fastgw/v1/tunnel/x HTTP/1.1\r\n"), .http)
        XCTAssertEqual(verdict("get /.fastgw/v1/tunnel HTTP/1.1\r\n"), .http)
        XCTAssertEqual(verdict("GET /.fastgw/v1/tunnel?x HTTP/1.1\r\n"), .http)
    }

    func testAPrefixWaitsForMore() {
        XCTAssertEqual(verdict(""), .needMore)
        XCTAssertEqual(verdict("GET /.fa"), .needMore)
        XCTAssertEqual(verdict("GET /.fastgw/v1/tunnel"), .needMore)
        XCTAssertEqual(TunnelSniff.prefix.count, 23)
    }
}

final class SharedTunnelConfigTests: XCTestCase {
    private let site = """
        [[listener]]
        name = "web"
        protocol = "https"
        listen = "0.0.0.0:443"
        cert = "site.crt"
        key = "site.key"

        """

    func testWithoutATunnelListenerTheDedicatedPortIsOptional() throws {
        let base = """
            [tunnel]
            keepalive_interval = "5s"
            [[agent]]
            name = "a"
            token = "0123456789abcdef0123"

            """
        let c = try GatewayConfigFixture(base: base).parse(site + "tunnel = true\n").get()
        XCTAssertNil(c.tunnel.listen)
        XCTAssertEqual(c.listeners.map(\.tunnel), [true])
        // No [tunnel] table at all is fine too with a shared listener.
        let bare = try GatewayConfigFixture(base: "[[agent]]\nname = \"a\"\ntoken = \"0123456789abcdef0123\"\n").parse(site + "tunnel = true\n").get()
        XCTAssertNil(bare.tunnel.listen)
    }

    func testTheDedicatedPortStaysByDefaultAndWithListen() throws {
        let c = try GatewayConfigFixture().parse(site).get()
        XCTAssertEqual(c.tunnel.listen, HostPort(host: "0.0.0.0", port: 7443))
        XCTAssertEqual(c.listeners.map(\.tunnel), [false])
        let both = try GatewayConfigFixture(base: GatewayConfigFixture.minimal.replacingOccurrences(
            of: "[tunnel]\n", with: "[tunnel]\nlisten = \"0.0.0.0:7000\"\n")).parse(site + "tunnel = true\n").get()
        XCTAssertEqual(both.tunnel.listen, HostPort(host: "0.0.0.0", port: 7000))
    }

    func testMistakes() {
        XCTAssertEqual(GatewayConfigFixture(base: "[tunnel]\nclient_ca = \"ca.pem\"\n[[agent]]\nname = \"a\"\ntoken = \"0123456789abcdef0123\"\n")
            .errors(site + "tunnel = true\n"), [
            "/etc/fastgw/gateway.toml:2: [tunnel] client_ca applies to the dedicated tunnel listener: set [tunnel] listen too (agents on a tunnel = true listener use its certificate)",
        ])
        XCTAssertEqual(GatewayConfigFixture().errors("[[listener]]\nname = \"p\"\nprotocol = \"http\"\nlisten = \"0.0.0.0:80\"\ntunnel = true\n"), [
            "/etc/fastgw/gateway.toml:11: listener \"p\": tunnel = true needs protocol \"https\" (agents speak TLS)",
        ])
        XCTAssertEqual(GatewayConfigFixture(base: "[tunnel]\nlisten = \"0.0.0.0:7000\"\n[[agent]]\nname = \"a\"\ntoken = \"0123456789abcdef0123\"\n")
            .errors(""), [
            "/etc/fastgw/gateway.toml:1: [tunnel] cert is required (PEM certificate chain)",
            "/etc/fastgw/gateway.toml:1: [tunnel] key is required (PEM private key)",
        ])
    }
}
