/// The agent's configuration (`/etc/fastgw/agent.toml`, DESIGN §6).
public struct AgentConfig: Equatable, Sendable {
    public var file: String
    public var name: String = ""
    public var token: String = ""
    public var gateways: [HostPort] = []
    /// TLS server name to verify; defaults to each gateway's host.
    public var serverName: String?
    /// CA bundle that signs the gateways' certificates; the system store when nil.
    public var ca: String?
    public var clientCert: String?
    public var clientKey: String?
    public var transport: Transport = .auto
    /// Directly or through an egress proxy (`proxy`, `proxy_credentials`).
    public var egress = EgressRoute()
    public var connections: Int = 2
    public var drainTimeout: Duration = .seconds(30)
    public var tuning = TunnelTuning()
    public var controlSocket: String = "/run/fastgw/agent.sock"
    /// `[metrics]`: the HTTP listener for /metrics, /healthz and /readyz; nil: none.
    public var metrics: MetricsConfig?
    /// One journal record per stream the agent connects (off: journald rate-limits busy services).
    public var accessLog = false
    public var services: [Service] = []
    /// Lines of keys whose values are checked later, outside this parser (`agent.ca`, `agent.cert`, `agent.key`).
    public var sourceLines: [String: Int] = [:]
    /// Every `credential:NAME` path value, for the checks that need the filesystem.
    public var credentials: [CredentialReference] = []

    /// Which tunnel carrier the agent asks for (DESIGN §2.1).
    public enum Transport: String, Sendable {
        /// The direct carrier, and the WebSocket carrier after a handshake that something on
        /// the way broke (not a refusal from the gateway itself).
        case auto
        case h2
        case websocket
    }

    public struct Service: Equatable, Sendable {
        /// `network`: connects destinations visitors name, within `allow` (always private).
        public enum Kind: String, Sendable { case tcp, http, udp, network }
        /// How an http service's upstream is spoken to.
        public enum UpstreamProtocol: String, Sendable { case http1, h2c }
        public var name: String
        public var kind: Kind
        public var upstream: UpstreamAddress
        /// tcp and udp services: the gateway port they are published on.
        public var remotePort: Int?
        /// http services: the host names (exact or `*.suffix`) and path prefix they claim.
        public var hosts: [String] = []
        public var pathPrefix: String?
        public var upstreamProtocol: UpstreamProtocol = .http1
        public var connectTimeout: Duration = .seconds(5)
        /// http services: idle upstream connections kept per tunnel connection, and for how long.
        public var maxIdleConnections = 32
        public var idleTimeout: Duration = .seconds(60)
        /// A PROXY protocol header written first on every upstream connection (tcp services,
        /// and http services speaking http1), naming the public client and listener.
        public var proxyProtocol: ProxyHeader.Version?
        /// http services: the client-naming fields the upstream receives.
        public var forwardedHeaders = ForwardingSelection.default
        /// `expose = "private"`: no public port; reached only by granted visitors.
        public var isPrivate = false
        /// network services: the destinations visitors may reach.
        public var allow = NetworkAllow(rules: [])
    }

    public func service(named name: String) -> Service? {
        services.first { $0.name == name }
    }
}

extension AgentConfig {
    /// `credentials`: where `credential:NAME` path values are (Credentials.swift).
    /// `environment`: the process environment, for `proxy = "env"`.
    public static func parse(
        text: String, file: String, credentials: CredentialsLookup = .none,
        environment: (String) -> String? = { _ in nil }, readFile: (String) throws -> String
    ) -> Result<AgentConfig, ConfigError> {
        let (root, diagnostics) = ConfigParsing.root(text: text, file: file, credentials: credentials)
        guard var root else { return .failure(ConfigError(diagnostics.items)) }
        var config = AgentConfig(file: file)

        if var a = root.table("agent") {
            readConnection(&a, into: &config, table: "agent", environment: environment, readFile: readFile)
        } else {
            diagnostics.error(line: nil, "[agent] section is required (name, token, gateways)")
        }

        if var c = root.table("control") {
            if let s = c.path("socket", credential: false) { config.controlSocket = s }
            c.rejectUnknownKeys()
        }
        config.metrics = MetricsConfig.read(&root)

        if var l = root.table("log") {
            if let a = l.bool("access") { config.accessLog = a }
            l.rejectUnknownKeys()
        }

        var names = Set<String>()
        var ports = Set<Int>()
        // A udp service may share its port number with a tcp one: they are different sockets.
        var udpPorts = Set<Int>()
        for var s in root.tables("service") {
            let name = s.entryName(kind: "service", seen: &names)
            let type = s.oneOf("type", ["tcp", "http", "udp", "network"]) ?? "tcp"
            var upstream: UpstreamAddress?
            if type == "network" {
                s.refuse("upstream", "a network service has no upstream: visitors name each destination, checked against allow")
                upstream = .tcp(HostPort(host: "", port: 0))
            } else if let text = s.string("upstream") {
                switch UpstreamAddress.parse(text) {
                case .success(let u): upstream = u
                case .failure(let e): s.error("upstream", "upstream \"\(text)\": \(e) (or unix:/path)")
                }
            } else {
                s.error("upstream", "upstream is required (\"127.0.0.1:3000\" or \"unix:/run/app.sock\")")
            }
            let remotePort = s.int("remote_port", range: 1...65535)
            let connectTimeout = s.duration("connect_timeout")
            var service = Service(name: name, kind: Service.Kind(rawValue: type) ?? .tcp, upstream: upstream ?? .tcp(HostPort(host: "", port: 0)))
            if let connectTimeout { service.connectTimeout = connectTimeout }
            service.isPrivate = privateExposure(&s, type: type)
            if type != "network" { s.refuse("allow", "allow applies to network services only (type = \"network\")") }
            switch service.kind {
            case .network:
                for key in ["remote_port", "hosts", "path_prefix", "upstream_protocol", "max_idle_connections", "idle_timeout",
                            "forwarded_headers", "proxy_protocol"] {
                    s.refuse(key, "\(key) does not apply to a network service (it is private and connects what visitors name)")
                }
                service.allow = networkAllow(&s)
            case .tcp where service.isPrivate:
                for key in ["hosts", "path_prefix", "upstream_protocol", "max_idle_connections", "idle_timeout", "forwarded_headers"] {
                    s.refuse(key, "\(key) applies to http services only (this one has type \"tcp\")")
                }
                s.refuse("remote_port", "a private service has no public port: remove remote_port or expose = \"private\"")
            case .tcp:
                for key in ["hosts", "path_prefix", "upstream_protocol", "max_idle_connections", "idle_timeout", "forwarded_headers"] {
                    s.refuse(key, "\(key) applies to http services only (this one has type \"tcp\")")
                }
                if let remotePort {
                    if !ports.insert(remotePort).inserted {
                        s.error("remote_port", "remote_port \(remotePort) is already used by another service")
                    }
                    service.remotePort = remotePort
                } else if !s.has("remote_port") {
                    s.error("remote_port", "remote_port is required for a tcp service")
                }
            case .udp:
                for key in ["hosts", "path_prefix", "upstream_protocol", "max_idle_connections", "idle_timeout", "forwarded_headers",
                            "proxy_protocol", "connect_timeout"] {
                    s.refuse(key, "\(key) does not apply to udp services")
                }
                if case .unix? = upstream { s.error("upstream", "a udp service's upstream is host:port (datagrams go to a UDP port)") }
                if let remotePort {
                    if !udpPorts.insert(remotePort).inserted {
                        s.error("remote_port", "remote_port \(remotePort) is already used by another udp service")
                    }
                    service.remotePort = remotePort
                } else if !s.has("remote_port") {
                    s.error("remote_port", "remote_port is required for a udp service")
                }
            case .http:
                s.refuse("remote_port", "remote_port applies to tcp and udp services only; http services are routed by hosts")
                service.hosts = s.strings("hosts") ?? []
                if service.hosts.isEmpty && !s.has("hosts") {
                    s.error("hosts", "hosts is required for an http service, e.g. [\"app.example.com\"]")
                }
                for h in service.hosts {
                    if case .failure(let e) = HostPattern.parse(h) { s.error("hosts", "\(e)") }
                }
                if let p = s.string("path_prefix") {
                    switch PathPrefix.normalize(p) {
                    case .success(let normalized): service.pathPrefix = normalized
                    case .failure(let rejection): s.error("path_prefix", rejection.reason)
                    }
                }
                if let p = s.oneOf("upstream_protocol", ["http1", "h2c"]) {
                    service.upstreamProtocol = Service.UpstreamProtocol(rawValue: p) ?? .http1
                }
                if let n = s.int("max_idle_connections", range: 0...4096) { service.maxIdleConnections = n }
                if let d = s.duration("idle_timeout") {
                    if d <= .zero { s.error("idle_timeout", "idle_timeout must be positive") } else { service.idleTimeout = d }
                }
                if let names = s.strings("forwarded_headers") { service.forwardedHeaders = forwardingSelection(names, &s) }
            }
            service.proxyProtocol = proxyProtocol(&s, service)
            s.rejectUnknownKeys()
            if upstream != nil { config.services.append(service) }
        }

        root.rejectUnknownKeys()
        config.credentials = root.paths.references
        if diagnostics.failed { return .failure(ConfigError(diagnostics.items)) }
        return .success(config)
    }

    /// The connection keys an `[agent]` table shares with a visitor's `[visitor]` table:
    /// name, credentials, gateways, TLS, carrier, connections and tuning.
    static func readConnection(
        _ a: inout TableReader, into config: inout AgentConfig, table: String,
        environment: (String) -> String? = { _ in nil }, readFile: (String) throws -> String
    ) {
        config.name = a.string("name") ?? ""
        if !Names.isValid(config.name) {
            a.error("name", "\(table) name \"\(config.name)\" is invalid: \(Names.rule)")
        }
        // With a client certificate the token may go: the gateway may authenticate by
        // certificate alone (its [[agent]] auth = "certificate").
        if a.has("token") || a.has("token_file") || !a.has("cert") {
            config.token = Secrets.token(&a, readFile: readFile) ?? ""
        }
        for text in a.strings("gateways") ?? [] {
            switch HostPort.parse(text) {
            case .success(let hp): config.gateways.append(hp)
            case .failure(let e): a.error("gateways", "gateway \"\(text)\": \(e)")
            }
        }
        if !a.has("gateways") { a.error("gateways", "gateways is required, e.g. [\"gw.example.com:7443\"]") }
        config.serverName = a.string("server_name")
        config.ca = a.path("ca")
        config.clientCert = a.path("cert")
        config.clientKey = a.path("key")
        for key in ["ca", "cert", "key"] { config.sourceLines["\(table).\(key)"] = a.line(of: key) }
        if (config.clientCert == nil) != (config.clientKey == nil) {
            a.error(config.clientCert == nil ? "key" : "cert", "cert and key go together (client certificate for mTLS)")
        }
        if let t = a.oneOf("transport", ["auto", "h2", "websocket"]) {
            config.transport = Transport(rawValue: t) ?? .auto
        }
        config.egress = EgressRoute.read(from: &a, environment: environment, readFile: readFile)
        if let n = a.int("connections", range: 1...64) { config.connections = n }
        if let d = a.duration("drain_timeout") { config.drainTimeout = d }
        config.tuning.read(from: &a)
        a.rejectUnknownKeys()
    }

    /// `expose = "public" | "private"`; network services are private whatever is written, and
    /// only tcp and network services can be private for now.
    private static func privateExposure(_ s: inout TableReader, type: String) -> Bool {
        guard let e = s.oneOf("expose", ["public", "private"]) else { return type == "network" }
        if type == "network" && e == "public" {
            s.error("expose", "a network service is always private (never an open proxy)")
        }
        if (type == "http" || type == "udp") && e == "private" {
            s.error("expose", "expose = \"private\" applies to tcp and network services; an \(type) service is public")
        }
        return e == "private" || type == "network"
    }

    /// `allow = ["10.0.0.0/8:22", "db.internal:5432", "[2001:db8::1]:443"]`: required, non-empty.
    private static func networkAllow(_ s: inout TableReader) -> NetworkAllow {
        guard let texts = s.strings("allow") else {
            if !s.has("allow") { s.error("allow", "allow is required for a network service, e.g. [\"10.0.0.0/8:22\", \"db.internal:5432\"]") }
            return NetworkAllow(rules: [])
        }
        if texts.isEmpty { s.error("allow", "allow is empty: a network service must name what it lets visitors reach") }
        var rules: [NetworkAllow.Rule] = []
        for text in texts {
            switch NetworkAllow.parseRule(text) {
            case .success(let r): rules.append(r)
            case .failure(let e): s.error("allow", "allow \(e)")
            }
        }
        return NetworkAllow(rules: rules)
    }

    /// `proxy_protocol = "v1" | "v2"`: tcp services, and http services speaking http1 (an h2c
    /// upstream multiplexes many clients' requests on one connection, which one header
    /// cannot describe).
    private static func proxyProtocol(_ s: inout TableReader, _ service: Service) -> ProxyHeader.Version? {
        guard let v = s.oneOf("proxy_protocol", ["v1", "v2"]) else { return nil }
        if service.kind == .http && service.upstreamProtocol == .h2c {
            s.error("proxy_protocol", "proxy_protocol needs upstream_protocol = \"http1\" (an h2c connection carries many clients' requests)")
            return nil
        }
        return v == "v1" ? .v1 : .v2
    }

    /// `forwarded_headers = ["forwarded", "x-forwarded", "x-real-ip"]`, any subset, `[]` for none.
    private static func forwardingSelection(_ names: [String], _ s: inout TableReader) -> ForwardingSelection {
        var families = Set<ForwardingSelection.Family>()
        for name in names {
            guard let family = ForwardingSelection.Family(rawValue: name) else {
                let allowed = ForwardingSelection.Family.allCases.map(\.rawValue).joined(separator: ", ")
                s.error("forwarded_headers", "forwarded_headers: \"\(name)\" is not one of: \(allowed)")
                continue
            }
            if !families.insert(family).inserted {
                s.error("forwarded_headers", "forwarded_headers: \"\(name)\" is listed twice")
            }
        }
        return ForwardingSelection(families)
    }
}
