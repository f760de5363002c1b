/// A visitor's configuration (`/etc/fastgw/visitor.toml`): the connection keys of an agent's
/// `[agent]` table under `[visitor]`, plus the local doors into private services —
/// `[[forward]]` listeners and a SOCKS5 listener.
public struct VisitorConfig: Equatable, Sendable {
    /// Name, credentials, gateways, TLS, carrier, connections, tuning, `[control]` and `[log]`,
    /// read as for an agent (it has no services).
    public var connection: AgentConfig
    public var forwards: [Forward] = []
    /// `socks5 = "127.0.0.1:1080"`: RFC 1928 CONNECT into private services.
    public var socks5: HostPort?
    /// `socks5_users`: RFC 1929 users, `name:password` lines; nil lets any local client in.
    public var socks5Users: [String: [UInt8]]?
    /// `socks5_network`: the network service that reaches destinations not naming a service.
    public var socks5Network: String?
    /// `socks5_unauthenticated = true`: the operator's explicit consent to a `socks5` listener
    /// beyond loopback without `socks5_users` (refused otherwise).
    public var socks5Unauthenticated = false

    /// `[[forward]]`: every connection to `listen` is one stream to `service` (and, for a
    /// network service, to its `target`).
    public struct Forward: Equatable, Sendable {
        public var listen: HostPort
        public var service: String
        public var target: String?
    }

    public var file: String { connection.file }
    public var name: String { connection.name }
    public var controlSocket: String { connection.controlSocket }
    public static let defaultControlSocket = "/run/fastgw/visitor.sock"
}

extension VisitorConfig {
    /// A loopback address or `localhost`: only local processes reach a listener there.
    public static func isLoopback(_ host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        guard let address = IPAddress(host) else { return false }
        return NetworkAllow.loopback.contains { $0.contains(address) }
    }

    /// `environment`: the process environment, for `proxy = "env"` (as the agent's).
    public static func parse(
        text: String, file: String, credentials: CredentialsLookup = .none,
        environment: (String) -> String? = { _ in nil }, readFile: (String) throws -> String
    ) -> Result<VisitorConfig, ConfigError> {
        let (root, diagnostics) = ConfigParsing.root(text: text, file: file, credentials: credentials)
        guard var root else { return .failure(ConfigError(diagnostics.items)) }
        var connection = AgentConfig(file: file)
        connection.controlSocket = defaultControlSocket
        var config = VisitorConfig(connection: connection)
        var listens = Set<HostPort>()

        if var v = root.table("visitor") {
            if let hp = v.hostPort("socks5") {
                config.socks5 = hp
                listens.insert(hp)
            }
            config.socks5Network = v.string("socks5_network")
            if let n = config.socks5Network, !Names.isValid(n) {
                v.error("socks5_network", "service name \"\(n)\" is invalid: \(Names.rule)")
            }
            if let path = v.path("socks5_users") {
                config.socks5Users = users(&v, path: path, readFile: readFile)
            }
            config.socks5Unauthenticated = v.bool("socks5_unauthenticated") ?? false
            if let hp = config.socks5, config.socks5Users == nil, !config.socks5Unauthenticated, !v.has("socks5_users"),
               !Self.isLoopback(hp.host) {
                // Anyone who can reach it would use this visitor's grants without a password.
                v.error("socks5", "socks5 = \"\(hp)\" listens beyond loopback without socks5_users: anyone who reaches "
                    + "it would use this visitor's grants; add socks5_users, listen on 127.0.0.1, or set "
                    + "socks5_unauthenticated = true")
            }
            if config.socks5Unauthenticated, v.has("socks5_users") {
                v.error("socks5_unauthenticated", "socks5_unauthenticated = true contradicts socks5_users: remove one")
            }
            if config.socks5 == nil {
                for key in ["socks5_network", "socks5_users", "socks5_unauthenticated"] where v.has(key) {
                    v.error(key, "\(key) applies to the SOCKS5 listener: set socks5 = \"127.0.0.1:1080\" too")
                }
            }
            AgentConfig.readConnection(&v, into: &config.connection, table: "visitor", environment: environment, readFile: readFile)
        } else {
            diagnostics.error(line: nil, "[visitor] section is required (name, token, gateways)")
        }

        if var c = root.table("control") {
            if let s = c.path("socket", credential: false) { config.connection.controlSocket = s }
            c.rejectUnknownKeys()
        }
        if var l = root.table("log") {
            if let a = l.bool("access") { config.connection.accessLog = a }
            l.rejectUnknownKeys()
        }

        for var f in root.tables("forward") {
            let listen = f.hostPort("listen")
            if !f.has("listen") { f.error("listen", "listen is required, e.g. \"127.0.0.1:5432\"") }
            let service = f.string("service")
            if service == nil && !f.has("service") { f.error("service", "service is required: the private service to reach") }
            if let s = service, !Names.isValid(s) { f.error("service", "service name \"\(s)\" is invalid: \(Names.rule)") }
            let target = f.string("target")
            if let t = target, case .failure(let e) = HostPort.parse(t) {
                f.error("target", "target \"\(t)\": \(e)")
            }
            if let listen, !listens.insert(listen).inserted {
                f.error("listen", "\(listen) is already a forward or the socks5 listener")
            }
            f.rejectUnknownKeys()
            if let listen, let service { config.forwards.append(Forward(listen: listen, service: service, target: target)) }
        }
        if config.forwards.isEmpty && config.socks5 == nil && !diagnostics.failed {
            diagnostics.error(line: nil, "nothing to listen on: add a [[forward]] or [visitor] socks5")
        }

        root.rejectUnknownKeys()
        config.connection.credentials = root.paths.references
        if diagnostics.failed { return .failure(ConfigError(diagnostics.items)) }
        return .success(config)
    }

    private static func users(_ v: inout TableReader, path: String, readFile: (String) throws -> String) -> [String: [UInt8]]? {
        // `fastgw check` outside the unit cannot read a credential; the daemon will.
        if Credentials.isUnchecked(path) { return [:] }
        let text: String
        do {
            text = try readFile(path)
        } catch {
            v.error("socks5_users", "cannot read socks5_users \(path): \(error)")
            return nil
        }
        switch Socks5Users.parse(text) {
        case .success(let u): return u
        case .failure(let e):
            v.error("socks5_users", "socks5_users \(path): \(e.description)")
            return nil
        }
    }
}

/// The RFC 1929 users file: one `name:password` a line (`#` comments and blank lines
/// allowed); names and passwords of 1-255 bytes, as the protocol carries them.
public enum Socks5Users {
    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public let description: String
    }

    public static func parse(_ text: String) -> Result<[String: [UInt8]], ParseError> {
        var users: [String: [UInt8]] = [:]
        // "\r\n" is one Character: split on newlines, whichever kind.
        for (i, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                return .failure(ParseError(description: "line \(i + 1): expected name:password"))
            }
            let name = String(line[..<colon])
            let password = Array(line[line.index(after: colon)...].utf8)
            guard (1...255).contains(name.utf8.count), (1...255).contains(password.count) else {
                return .failure(ParseError(description: "line \(i + 1): name and password must be 1-255 bytes each"))
            }
            guard users.updateValue(password, forKey: name) == nil else {
                return .failure(ParseError(description: "line \(i + 1): user \"\(name)\" is listed twice"))
            }
        }
        guard !users.isEmpty else { return .failure(ParseError(description: "no users (name:password lines)")) }
        return .success(users)
    }
}
