import Protocol

/// A gateway config for tests: `base` (the tunnel's files and one agent) followed by the text
/// under test, parsed as /etc/fastgw/gateway.toml; `files` is what `readFile` finds (any other
/// path fails as missing).
struct GatewayConfigFixture {
    static let minimal = """
        [tunnel]
        cert = "gw.crt"
        key = "gw.key"
        [[agent]]
        name = "a"
        token = "0123456789abcdef0123"

        """

    var base = GatewayConfigFixture.minimal
    var files: [String: String] = [:]

    func parse(_ text: String) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig.parse(text: base + text, file: "/etc/fastgw/gateway.toml") { path in
            guard let content = files[path] else { throw POSIXErrorStub(path: path) }
            return content
        }
    }

    /// Every diagnostic as `file:line: message`, or `["accepted"]`.
    func errors(_ text: String) -> [String] {
        guard case .failure(let e) = parse(text) else { return ["accepted"] }
        return e.diagnostics.map(\.description)
    }
}
