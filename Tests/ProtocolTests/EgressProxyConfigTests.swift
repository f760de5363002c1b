import Protocol
import XCTest

/// `[agent] proxy`, `proxy_credentials`, `proxy = "env"` with HTTPS_PROXY/NO_PROXY (issue #17 item 3).
final class EgressProxyConfigTests: XCTestCase {
    private let head = """
        [agent]
        name = "a"
        token = "0123456789abcdef0123"
        gateways = ["gw.example.com:7443"]

        """

    private func parse(
        _ keys: String, env: [String: String] = [:], files: [String: String] = [:]
    ) -> Result<AgentConfig, ConfigError> {
        AgentConfig.parse(
            text: head + keys, file: "/etc/fastgw/agent.toml",
            credentials: CredentialsLookup(directory: "/run/credentials/fastgw-agent.service"),
            environment: { env[$0] },
            readFile: { path in
                guard let text = files[path] else { throw POSIXErrorStub(path: path) }
                return text
            })
    }

    private func errors(_ keys: String, env: [String: String] = [:], files: [String: String] = [:]) -> [String] {
        guard case .failure(let e) = parse(keys, env: env, files: files) else { return [] }
        return e.diagnostics.map(\.description)
    }

    func testURLsAreRead() throws {
        let gw = HostPort(host: "gw.example.com", port: 7443)
        let http = try parse("proxy = \"http://127.0.0.1:3128\"\n").get().egress
        XCTAssertEqual(http.source, .config)
        XCTAssertEqual(http.proxy(for: gw), EgressProxy(scheme: .http, endpoint: HostPort(host: "127.0.0.1", port: 3128)))
        XCTAssertEqual(try parse("proxy = \"SOCKS5://[::1]:1080/\"\n").get().egress.proxy?.description, "socks5://[::1]:1080")
        let h = try parse("proxy = \"socks5h://u:p@proxy.corp:1080\"\n").get().egress.proxy
        XCTAssertEqual(h?.scheme, .socks5h)
        XCTAssertEqual(h?.credentials?.description, "u:***")
        XCTAssertEqual(h?.description, "socks5h://proxy.corp:1080")
        XCTAssertNil(try parse("").get().egress.proxy(for: gw))
    }

    func testBadURLsNameTheLineAndHideThePassword() {
        XCTAssertEqual(errors("proxy = \"https://u:secret@proxy:3128\"\n"), [
            "/etc/fastgw/agent.toml:5: proxy \"https://u:***@proxy:3128\": https:// proxies (TLS to the proxy itself) are not supported; "
                + "use http://host:port (the tunnel inside the CONNECT is TLS to the gateway anyway)",
        ])
        XCTAssertEqual(errors("proxy = \"http://u:secret@proxy\"\n"), [
            "/etc/fastgw/agent.toml:5: proxy \"http://u:***@proxy\": the port is missing: http://host:port "
                + "(squid listens on 3128, SOCKS servers on 1080)",
        ])
        XCTAssertEqual(errors("proxy = \"proxy:3128\"\n"), [
            "/etc/fastgw/agent.toml:5: proxy \"proxy:3128\": the scheme is missing: write http://host:port, socks5://host:port "
                + "or socks5h://host:port (or \"env\" for HTTPS_PROXY and NO_PROXY)",
        ])
        XCTAssertEqual(errors("proxy = \"environment\"\n").count, 1)
        XCTAssertTrue(errors("proxy = \"environment\"\n")[0].contains("(or \"env\" for HTTPS_PROXY and NO_PROXY)"))
        XCTAssertTrue(errors("proxy = \"socks4://proxy:1080\"\n")[0].contains("socks4:// is not supported"))
        XCTAssertTrue(errors("proxy = \"ftp://proxy:21\"\n")[0].contains("unsupported scheme \"ftp\""))
        XCTAssertTrue(errors("proxy = \"http://proxy:3128/path\"\n")[0].contains("no path"))
        XCTAssertTrue(errors("proxy = \"http://proxy:99999\"\n")[0].contains("out of range"))
        XCTAssertTrue(errors("proxy = \"http://u@proxy:3128\"\n")[0].contains("user without password"))
        XCTAssertTrue(errors("proxy = \"\"\n")[0].contains("leave the key out"))
        XCTAssertTrue(errors("proxy_credentials = \"/etc/fastgw/proxy.pass\"\n")[0].contains("proxy_credentials needs proxy"))
    }

    func testCredentialsFromAFileOrASystemdCredential() throws {
        let file = try parse("proxy = \"http://proxy:3128\"\nproxy_credentials = \"proxy.pass\"\n",
                             files: ["/etc/fastgw/proxy.pass": "alice:s3cr:et\n"]).get()
        XCTAssertEqual(file.egress.proxy?.credentials, ProxyCredentials(user: "alice", password: "s3cr:et"))
        let credential = try parse("proxy = \"socks5://proxy:1080\"\nproxy_credentials = \"credential:proxy\"\n",
                                   files: ["/run/credentials/fastgw-agent.service/proxy": "bob:pw"]).get()
        XCTAssertEqual(credential.egress.proxy?.credentials, ProxyCredentials(user: "bob", password: "pw"))
        XCTAssertEqual(credential.credentials.map(\.name), ["proxy"])
    }

    func testCredentialErrors() {
        XCTAssertEqual(errors("proxy = \"http://u:secret@proxy:3128\"\nproxy_credentials = \"/p\"\n", files: ["/p": "a:b"]), [
            "/etc/fastgw/agent.toml:6: the proxy URL already carries user:password; keep the credentials in one place "
                + "(remove them from the URL, which is the safer one, or drop proxy_credentials)",
        ])
        XCTAssertEqual(errors("proxy = \"http://proxy:3128\"\nproxy_credentials = \"/p\"\n"), [
            "/etc/fastgw/agent.toml:6: cannot read proxy_credentials /p: No such file or directory",
        ])
        XCTAssertTrue(errors("proxy = \"http://proxy:3128\"\nproxy_credentials = \"credential:px\"\n")[0]
            .contains("LoadCredential=px:"))
        XCTAssertEqual(errors("proxy = \"http://proxy:3128\"\nproxy_credentials = \"/p\"\n", files: ["/p": "secretonly\n"]), [
            "/etc/fastgw/agent.toml:6: proxy_credentials /p: the file must hold user:password (no colon found)",
        ])
        XCTAssertTrue(errors("proxy = \"http://proxy:3128\"\nproxy_credentials = \"/p\"\n", files: ["/p": "a:\n"])[0]
            .contains("password is empty"))
        let long = String(repeating: "x", count: 256)
        XCTAssertTrue(errors("proxy = \"http://proxy:3128\"\nproxy_credentials = \"/p\"\n", files: ["/p": "a:\(long)"])[0]
            .contains("at most 255 bytes"))
        XCTAssertTrue(errors("proxy = \"http://proxy:3128\"\nproxy_credentials = \"/p\"\n", files: ["/p": "a:b\nc:d\n"])[0]
            .contains("one line"))
    }

    func testEnvironment() throws {
        let gw = HostPort(host: "gw.example.com", port: 7443)
        let none = try parse("proxy = \"env\"\n").get().egress
        XCTAssertEqual(none.source, .environment(variable: nil))
        XCTAssertNil(none.proxy(for: gw))

        // HTTPS_PROXY wins over https_proxy and ALL_PROXY; a bare host:port is http.
        let env = ["HTTPS_PROXY": "proxy.corp:3128", "https_proxy": "http://other:1", "ALL_PROXY": "socks5://s:1080"]
        let upper = try parse("proxy = \"env\"\n", env: env).get().egress
        XCTAssertEqual(upper.source, .environment(variable: "HTTPS_PROXY"))
        XCTAssertEqual(upper.proxy(for: gw)?.description, "http://proxy.corp:3128")
        let all = try parse("proxy = \"env\"\n", env: ["HTTPS_PROXY": "", "all_proxy": "socks5h://s:1080"]).get().egress
        XCTAssertEqual(all.proxy(for: gw)?.description, "socks5h://s:1080")

        // Credentials from a file apply to the environment's proxy.
        let withFile = try parse("proxy = \"env\"\nproxy_credentials = \"/p\"\n", env: ["https_proxy": "http://p:3128"],
                                 files: ["/p": "u:pw"]).get()
        XCTAssertEqual(withFile.egress.proxy?.credentials?.user, "u")

        XCTAssertEqual(errors("proxy = \"env\"\n", env: ["HTTPS_PROXY": "https://u:secret@p:3128"]), [
            "/etc/fastgw/agent.toml:5: proxy = \"env\": HTTPS_PROXY=\"https://u:***@p:3128\": https:// proxies (TLS to the proxy itself) "
                + "are not supported; use http://host:port (the tunnel inside the CONNECT is TLS to the gateway anyway)",
        ])
        XCTAssertEqual(errors("proxy = \"env\"\n", env: ["HTTPS_PROXY": "http://p:3128", "NO_PROXY": "10.0.0.1/8"]), [
            "/etc/fastgw/agent.toml:5: proxy = \"env\": NO_PROXY: \"10.0.0.1/8\": host bits are set after /8 (the block is 10.0.0.0/8)",
        ])
    }

    func testNoProxy() throws {
        let list = try NoProxyList.parse("localhost, .corp.example ,example.com:7443 10.0.0.0/8,[2001:db8::1]:443,192.0.2.7").get()
        XCTAssertTrue(list.matches(host: "localhost"))
        XCTAssertTrue(list.matches(host: "corp.example"))
        XCTAssertTrue(list.matches(host: "gw.corp.example"))
        XCTAssertTrue(list.matches(host: "GW.Example.COM."))
        XCTAssertFalse(list.matches(host: "notexample.com"))
        XCTAssertFalse(list.matches(host: "example.org"))
        XCTAssertTrue(list.matches(host: "10.1.2.3"))
        XCTAssertFalse(list.matches(host: "11.1.2.3"))
        XCTAssertTrue(list.matches(host: "2001:db8::1"))
        XCTAssertTrue(list.matches(host: "192.0.2.7"))
        XCTAssertFalse(list.matches(host: "192.0.2.8"))
        XCTAssertTrue(try NoProxyList.parse("*").get().matches(host: "anything"))
        XCTAssertTrue(try NoProxyList.parse("").get().isEmpty)

        let route = try parse("proxy = \"env\"\n", env: ["HTTPS_PROXY": "http://p:3128", "no_proxy": "example.com"]).get().egress
        XCTAssertNil(route.proxy(for: HostPort(host: "gw.example.com", port: 7443)))
        XCTAssertNotNil(route.proxy(for: HostPort(host: "gw.example.net", port: 7443)))
    }

    func testRedaction() {
        XCTAssertEqual(EgressProxy.redacted("http://alice:pw@proxy:3128"), "http://alice:***@proxy:3128")
        XCTAssertEqual(EgressProxy.redacted("alice:pw@proxy:3128"), "alice:***@proxy:3128")
        // Everything before the last @ is user info: more hidden rather than a password shown.
        XCTAssertEqual(EgressProxy.redacted("socks5://a:b@c@proxy:1080/x@y"), "socks5://a:***@y")
        XCTAssertEqual(EgressProxy.redacted("http://u:pa/ss@proxy:3128"), "http://u:***@proxy:3128")
        XCTAssertEqual(EgressProxy.redacted("http://u:p?a#s@proxy:3128"), "http://u:***@proxy:3128")
        XCTAssertEqual(EgressProxy.redacted("http://proxy:3128"), "http://proxy:3128")
        XCTAssertEqual(EgressProxy.redacted("http://alice@proxy:3128"), "http://alice@proxy:3128")
    }
}
