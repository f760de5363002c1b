import Protocol
import XCTest

final class GatewayConfigTests: XCTestCase {
    private let token = "0123456789abcdef0123"

    private func parse(_ text: String, files: [String: String] = [:]) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig.parse(text: text, file: "/etc/fastgw/gateway.toml") { path in
            guard let s = files[path] else { throw POSIXErrorStub(path: path) }
            return s
        }
    }

    private func errors(_ text: String, files: [String: String] = [:]) -> [String] {
        switch parse(text, files: files) {
        case .success: return []
        case .failure(let e): return e.diagnostics.map(\.description)
        }
    }

    func testValidConfigWithDefaultsAndTokenFile() throws {
        let config = try parse("""
            [gateway]
            drain_timeout = "45s"
            [tunnel]
            listen = "0.0.0.0:7443"
            cert = "tls/gw.crt"
            key = "/abs/gw.key"
            [[agent]]
            name = "office-nas"
            token_file = "tokens/nas"
            allow_ports = [2222, 5432]
            """, files: ["/etc/fastgw/tokens/nas": token + "\n"]).get()
        XCTAssertEqual(config.drainTimeout, .seconds(45))
        XCTAssertEqual(config.tunnel.cert, "/etc/fastgw/tls/gw.crt")
        XCTAssertEqual(config.tunnel.key, "/abs/gw.key")
        XCTAssertEqual(config.tunnel.tuning.streamWindow, 4 << 20)
        XCTAssertEqual(config.tunnel.tuning.keepaliveInterval, .seconds(15))
        XCTAssertEqual(config.agents.first?.token, token, "trailing newline of token_file is not part of the token")
        XCTAssertEqual(config.tcpPorts.map(\.listen), [HostPort(host: "0.0.0.0", port: 2222), HostPort(host: "0.0.0.0", port: 5432)])
        XCTAssertEqual(config.controlSocket, "/run/fastgw/gateway.sock")
        XCTAssertEqual(config.startupWait, .seconds(5))
        XCTAssertFalse(config.accessLog)
    }

    func testStartupWaitAccessLogAndReservedListenerNames() throws {
        let base = """
            [gateway]
            startup_wait = "2s"
            [log]
            access = true
            [tunnel]
            cert = "a"
            key = "b"
            [[agent]]
            name = "a"
            token = "\(token)"
            """
        let config = try parse(base).get()
        XCTAssertEqual(config.startupWait, .seconds(2))
        XCTAssertTrue(config.accessLog)
        let errs = errors(base + """

            [[listener]]
            name = "control"
            listen = "127.0.0.1:9000"
            """)
        XCTAssertEqual(errs, ["/etc/fastgw/gateway.toml:12: listener \"control\": listener name \"control\" is reserved for the built-in control listener"])
    }

    func testErrorsCarryTheLineOfTheOffendingKey() {
        let errs = errors("""
            [tunnel]
            listen = "0.0.0.0:7443"
            cert = "a"
            key = "b"

            [[listener]]
            name = "ssh"
            listen = "0.0.0.0:70000"

            [[agent]]
            name = "nas"
            token = "\(token)"
            allow_ports = [22, 99999]
            colour = "blue"
            """)
        XCTAssertEqual(errs, [
            "/etc/fastgw/gateway.toml:8: listener \"ssh\": listen \"0.0.0.0:70000\": port 70000 out of range (1-65535)",
            "/etc/fastgw/gateway.toml:13: agent \"nas\": allow_ports: 99999 out of range (1-65535)",
            "/etc/fastgw/gateway.toml:14: agent \"nas\": unknown key \"colour\" in [agent]",
        ])
    }

    func testSecondArrayEntryIsLocated() {
        let errs = errors("""
            [tunnel]
            cert = "a"
            key = "b"
            [[agent]]
            name = "one"
            token = "\(token)"
            [[agent]]
            name = "two"
            token = "short"
            """)
        XCTAssertEqual(errs, ["/etc/fastgw/gateway.toml:9: agent \"two\": token is shorter than 16 characters; generate one with: openssl rand -hex 32"])
    }

    func testMissingPiecesAndSyntaxErrors() {
        XCTAssertEqual(errors(""), ["/etc/fastgw/gateway.toml: [tunnel] section is required (listen, cert, key)"])
        let syntax = errors("[tunnel]\nlisten = \"x\nkey = 1\n")
        XCTAssertEqual(syntax.count, 1)
        XCTAssertTrue(syntax[0].hasPrefix("/etc/fastgw/gateway.toml:2: TOML syntax:"), syntax[0])
        let unreadable = errors("[tunnel]\ncert = \"a\"\nkey = \"b\"\n[[agent]]\nname = \"x\"\ntoken_file = \"missing\"\n")
        XCTAssertEqual(unreadable.count, 1)
        XCTAssertTrue(unreadable[0].hasPrefix("/etc/fastgw/gateway.toml:6: agent \"x\": cannot read token_file /etc/fastgw/missing"), unreadable[0])
    }

    func testDurationsAndSharedTokensAreChecked() {
        let errs = errors("""
            [gateway]
            drain_timeout = 30
            [tunnel]
            cert = "a"
            key = "b"
            keepalive_interval = "soon"
            [[agent]]
            name = "a"
            token = "\(token)"
            [[agent]]
            name = "b"
            token = "\(token)"
            """)
        XCTAssertEqual(errs, [
            "/etc/fastgw/gateway.toml:2: drain_timeout must be a string",
            "/etc/fastgw/gateway.toml:6: keepalive_interval \"soon\" is not a duration (examples: \"500ms\", \"15s\", \"2m\")",
            "/etc/fastgw/gateway.toml: two agents share one token: give every agent its own",
        ])
    }

    func testHTTPListenersAndSettings() throws {
        let config = try parse("""
            [tunnel]
            cert = "a"
            key = "b"
            [http]
            max_header_size = "32KiB"
            max_body_size = "1GiB"
            header_timeout = "5s"
            idle_timeout = "30s"
            response_timeout = "2m"
            [[listener]]
            name = "web"
            protocol = "http"
            listen = "0.0.0.0:80"
            [[agent]]
            name = "a"
            token = "\(token)"
            allow_hosts = ["*.example.com"]
            """).get()
        XCTAssertEqual(config.listeners.map(\.kind), [.http])
        XCTAssertTrue(config.tcpPorts.isEmpty)
        XCTAssertEqual(config.http.maxHeaderSize, 32 << 10)
        XCTAssertEqual(config.http.maxBodySize, 1 << 30)
        XCTAssertEqual(config.http.headerTimeout, .seconds(5))
        XCTAssertEqual(config.http.idleTimeout, .seconds(30))
        XCTAssertEqual(config.http.responseTimeout, .seconds(120))
        XCTAssertEqual(GatewayConfig.parse(text: "[tunnel]\ncert = \"a\"\nkey = \"b\"\n[[agent]]\nname = \"a\"\ntoken = \"\(token)\"",
                                           file: "g.toml", readFile: { _ in "" }).map(\.http), .success(HTTPSettings()))
        XCTAssertEqual(errors("""
            [tunnel]
            cert = "a"
            key = "b"
            [http]
            header_timeout = "0s"
            max_header_size = 10
            [[agent]]
            name = "a"
            token = "\(token)"
            """), [
                "/etc/fastgw/gateway.toml:6: max_header_size 10 out of range (1024-1048576 bytes)",
                "/etc/fastgw/gateway.toml:5: header_timeout must be positive",
            ])
    }

    func testHTTPSListenersAndCertificates() throws {
        let base = """
            [tunnel]
            cert = "a"
            key = "b"
            [[agent]]
            name = "a"
            token = "\(token)"

            """
        let config = try parse(base + """
            [[listener]]
            name = "tls"
            protocol = "https"
            listen = "0.0.0.0:443"
            cert = "tls/default.crt"
            key = "tls/default.key"
            [[certificate]]
            cert = "/etc/ssl/site.crt"
            key = "/etc/ssl/site.key"
            hosts = ["site.example", "*.site.example"]
            [[certificate]]
            cert = "other.crt"
            key = "other.key"
            """).get()
        XCTAssertEqual(config.listeners.map(\.kind), [.https])
        XCTAssertEqual(config.listeners[0].defaultCertificate?.cert, "/etc/fastgw/tls/default.crt")
        XCTAssertEqual(config.listeners[0].defaultCertificate?.line, 11)
        XCTAssertEqual(config.certificates.map(\.files.key), ["/etc/ssl/site.key", "/etc/fastgw/other.key"])
        XCTAssertEqual(config.certificates[0].hosts, [.exact("site.example"), .wildcard(suffix: "site.example")])
        XCTAssertEqual(config.certificates[1].hosts, [], "no hosts: the certificate's own names decide")

        XCTAssertEqual(errors(base + """
            [[listener]]
            name = "tls"
            protocol = "https"
            listen = "0.0.0.0:443"
            cert = "x.crt"
            [[listener]]
            name = "plain"
            protocol = "http"
            listen = "0.0.0.0:80"
            key = "x.key"
            [[certificate]]
            key = "k"
            hosts = ["bad host"]
            """), [
                "/etc/fastgw/gateway.toml:11: listener \"tls\": cert is given without key",
                "/etc/fastgw/gateway.toml:16: listener \"plain\": key applies to protocol \"https\" listeners only",
                "/etc/fastgw/gateway.toml:18: key is given without cert",
                "/etc/fastgw/gateway.toml:19: hosts: \"bad host\" is not a host name or *.suffix pattern",
                "/etc/fastgw/gateway.toml: listener \"tls\": protocol \"https\" needs a certificate: give it cert and key, or add a [[certificate]]",
            ])
    }
}

struct POSIXErrorStub: Error, CustomStringConvertible {
    let path: String
    var description: String { "No such file or directory" }
}
