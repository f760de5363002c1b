import Protocol
import XCTest

/// `credential:NAME` path values (systemd credentials, issue #15 item 6): the decision, with
/// the environment injected, and what the parsers make of it.
final class CredentialsTests: XCTestCase {
    private let token = "0123456789abcdef0123"
    private let run = "/run/credentials/fastgw.service"

    private func lookup(_ environment: [String: String], _ whenUnset: CredentialsLookup.WhenUnset = .refuse) -> CredentialsLookup {
        CredentialsLookup(environment: { environment[$0] }, whenUnset: whenUnset)
    }

    private func gateway(_ text: String, _ credentials: CredentialsLookup, files: [String: String] = [:]) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig.parse(text: text, file: "/etc/fastgw/gateway.toml", credentials: credentials) { path in
            guard let s = files[path] else { throw POSIXErrorStub(path: path) }
            return s
        }
    }

    private func errors<T>(_ result: Result<T, ConfigError>) -> [String] {
        if case .failure(let e) = result { return e.diagnostics.map(\.description) }
        return []
    }

    private let gatewayText = """
        [tunnel]
        cert = "tls/gw.crt"
        key = "credential:gateway.key"
        [[agent]]
        name = "office"
        token_file = "credential:tokens_office"
        """

    func testLookupReadsTheVariableThroughTheInjectedEnvironment() {
        XCTAssertEqual(lookup(["CREDENTIALS_DIRECTORY": run]).directory, run)
        XCTAssertNil(lookup([:]).directory)
        XCTAssertNil(lookup(["CREDENTIALS_DIRECTORY": ""]).directory, "empty is unset")
        XCTAssertNil(CredentialsLookup.none.directory)
    }

    func testResolution() {
        let set = lookup(["CREDENTIALS_DIRECTORY": run])
        XCTAssertEqual(ConfigPath.resolve("tls/gw.key", against: "/etc/fastgw", credentials: set), .file("/etc/fastgw/tls/gw.key"))
        XCTAssertEqual(ConfigPath.resolve("/abs/key", against: "/etc/fastgw", credentials: set), .file("/abs/key"))
        XCTAssertEqual(ConfigPath.resolve("./credential:x", against: "/etc/fastgw", credentials: set), .file("/etc/fastgw/./credential:x"),
                       "a file whose name begins with the prefix")
        XCTAssertEqual(ConfigPath.resolve("credential:gw.key", against: "/etc/fastgw", credentials: set),
                       .credential(name: "gw.key", path: "\(run)/gw.key"))
        XCTAssertEqual(ConfigPath.resolve("credential:k", against: ".", credentials: lookup(["CREDENTIALS_DIRECTORY": "/c/"])),
                       .credential(name: "k", path: "/c/k"))
        XCTAssertEqual(ConfigPath.resolve("credential:gw.key", against: "/etc/fastgw", credentials: lookup([:], .skip)),
                       .unchecked(name: "gw.key"))
        guard case .invalid(let why) = ConfigPath.resolve("credential:gw.key", against: "/etc", credentials: lookup([:])) else {
            return XCTFail("an unset directory is refused")
        }
        XCTAssertTrue(why.contains("LoadCredential=gw.key:"), why)
        guard case .invalid(let relative) = ConfigPath.resolve("credential:k", against: "/etc", credentials: lookup(["CREDENTIALS_DIRECTORY": "creds"])) else {
            return XCTFail("a relative directory is refused")
        }
        XCTAssertTrue(relative.contains("not an absolute path"), relative)
    }

    func testNames() {
        for bad in ["", ".", "..", "a/b", "/etc/shadow", "../x", String(repeating: "n", count: 256), "a\u{7}b", "a\nb"] {
            XCTAssertNotNil(Credentials.problem(withName: bad), bad)
            guard case .invalid = ConfigPath.resolve("credential:" + bad, against: "/etc", credentials: lookup(["CREDENTIALS_DIRECTORY": run])) else {
                return XCTFail("accepted \(bad.debugDescription)")
            }
        }
        for good in ["gateway.key", "tokens_office-nas", "a..b", "..a", String(repeating: "n", count: 255)] {
            XCTAssertNil(Credentials.problem(withName: good), good)
        }
    }

    func testGatewayReadsKeyAndTokenFromTheDirectory() throws {
        let c = try gateway(gatewayText, lookup(["CREDENTIALS_DIRECTORY": run]), files: ["\(run)/tokens_office": token + "\n"]).get()
        XCTAssertEqual(c.tunnel.key, "\(run)/gateway.key")
        XCTAssertEqual(c.tunnel.cert, "/etc/fastgw/tls/gw.crt")
        XCTAssertEqual(c.agents.first?.token, token)
        XCTAssertEqual(c.credentials, [
            CredentialReference(key: "key", line: 3, name: "gateway.key", path: "\(run)/gateway.key"),
            CredentialReference(key: "agent \"office\": token_file", line: 6, name: "tokens_office", path: "\(run)/tokens_office"),
        ])
    }

    func testDaemonWithoutTheDirectoryNamesKeyLineAndUnit() {
        let out = errors(gateway(gatewayText, lookup([:])))
        XCTAssertEqual(out.count, 2, "\(out)")
        XCTAssertTrue(out[0].hasPrefix("/etc/fastgw/gateway.toml:3: key \"credential:gateway.key\" is a systemd credential but $CREDENTIALS_DIRECTORY is not set"), out[0])
        XCTAssertTrue(out[0].contains("under systemd with LoadCredential=gateway.key:"), out[0])
        XCTAssertTrue(out[1].hasPrefix("/etc/fastgw/gateway.toml:6: agent \"office\": token_file \"credential:tokens_office\""), out[1])
    }

    func testCheckWithoutTheDirectorySkipsAndRecords() throws {
        let c = try gateway(gatewayText, lookup([:], .skip)).get()
        XCTAssertEqual(c.tunnel.key, "credential:gateway.key")
        XCTAssertTrue(Credentials.isUnchecked(c.tunnel.key))
        XCTAssertFalse(Credentials.isUnchecked(c.tunnel.cert))
        XCTAssertEqual(c.credentials.map(\.path), [nil, nil])
        XCTAssertEqual(c.agents.count, 1, "the grant stays, so the rest of the file is validated")
    }

    func testMissingTokenCredentialSaysWhatTheUnitLacks() {
        let out = errors(gateway(gatewayText, lookup(["CREDENTIALS_DIRECTORY": run])))
        XCTAssertEqual(out.count, 1, "\(out)")
        XCTAssertTrue(out[0].hasPrefix("/etc/fastgw/gateway.toml:6: agent \"office\": cannot read token_file \(run)/tokens_office"), out[0])
        XCTAssertTrue(out[0].hasSuffix("the unit needs LoadCredential=tokens_office:/path/to/file (or SetCredential=tokens_office:…)"), out[0])
    }

    func testInvalidNameIsReportedOnItsLine() {
        let out = errors(gateway(gatewayText.replacingOccurrences(of: "credential:gateway.key", with: "credential:../shadow"),
                                 lookup(["CREDENTIALS_DIRECTORY": run]), files: ["\(run)/tokens_office": token]))
        XCTAssertEqual(out, ["/etc/fastgw/gateway.toml:3: key \"credential:../shadow\": a credential name is a file name in $CREDENTIALS_DIRECTORY and cannot contain \"/\""])
    }

    func testEveryPathKeyTakesCredentials() throws {
        let set = lookup(["CREDENTIALS_DIRECTORY": run])
        let g = try gateway("""
            [tunnel]
            cert = "credential:tunnel.crt"
            key = "credential:tunnel.key"
            client_ca = "credential:agents-ca.crt"
            client_crl = "credential:agents.crl"
            [[listener]]
            name = "web"
            protocol = "https"
            listen = "0.0.0.0:443"
            cert = "credential:web.crt"
            key = "credential:web.key"
            [[certificate]]
            cert = "example.crt"
            key = "credential:example.key"
            [[agent]]
            name = "office"
            token = "\(token)"
            """, set).get()
        XCTAssertEqual(g.tunnel.cert, "\(run)/tunnel.crt")
        XCTAssertEqual([g.tunnel.clientCA, g.tunnel.clientCRL], ["\(run)/agents-ca.crt", "\(run)/agents.crl"])
        XCTAssertEqual(g.listeners[0].defaultCertificate?.key, "\(run)/web.key")
        XCTAssertEqual(g.certificates[0].files.key, "\(run)/example.key")
        XCTAssertEqual(g.certificates[0].files.cert, "/etc/fastgw/example.crt")
        XCTAssertEqual(g.credentials.map(\.name), ["tunnel.crt", "tunnel.key", "agents-ca.crt", "agents.crl", "web.crt", "web.key", "example.key"])

        let a = try AgentConfig.parse(text: """
            [agent]
            name = "office"
            token_file = "credential:agent.token"
            gateways = ["gw.example.com:7443"]
            ca = "credential:ca.crt"
            cert = "credential:client.crt"
            key = "credential:client.key"
            """, file: "/etc/fastgw/agent.toml", credentials: set) { path in
            guard path == "\(run)/agent.token" else { throw POSIXErrorStub(path: path) }
            return self.token
        }.get()
        XCTAssertEqual(a.token, token)
        XCTAssertEqual([a.ca, a.clientCert, a.clientKey], ["\(run)/ca.crt", "\(run)/client.crt", "\(run)/client.key"])
    }

    func testControlSocketCannotBeACredential() {
        let out = errors(gateway("""
            [tunnel]
            cert = "gw.crt"
            key = "gw.key"
            [control]
            socket = "credential:sock"
            [[agent]]
            name = "office"
            token = "\(token)"
            """, lookup(["CREDENTIALS_DIRECTORY": run])))
        XCTAssertEqual(out.count, 1, "\(out)")
        XCTAssertTrue(out[0].hasPrefix("/etc/fastgw/gateway.toml:5: socket \"credential:sock\": fastgw creates this file"), out[0])
    }
}
