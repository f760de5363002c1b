/// The gateway's configuration (`/etc/fastgw/gateway.toml`, DESIGN §6).
public struct GatewayConfig: Equatable, Sendable {
    public var file: String
    public var drainTimeout: Duration = .seconds(30)
    /// After start, how long a public listener holds its connections (unaccepted, queued in
    /// the kernel) until an agent serves its port, so a restart does not turn clients away.
    public var startupWait: Duration = .seconds(5)
    /// One journal record per public connection (off: journald rate-limits busy services).
    public var accessLog = false
    /// Address TCP service ports are bound on when no `[[listener]]` names that port.
    public var publicAddress: String = "0.0.0.0"
    /// `[gateway] trusted_proxies`: balancers and proxies whose PROXY headers and forwarding
    /// fields are believed (ForwardedFields+Trust.swift).
    public var trustedProxies = CIDRSet()
    /// `[gateway] proxy_protocol`: the TCP ports opened from `allow_ports` (which have no
    /// `[[listener]]` of their own) expect a PROXY header.
    public var proxyProtocol = false
    public var tunnel: Tunnel
    public var controlSocket: String = "/run/fastgw/gateway.sock"
    /// `[metrics]`: the HTTP listener for /metrics, /healthz and /readyz; nil: none.
    public var metrics: MetricsConfig?
    public var listeners: [Listener] = []
    /// Certificates the HTTPS listeners choose from by SNI (`[[certificate]]`).
    public var certificates: [Certificate] = []
    /// `[acme]` and the `[[certificate]] acme = true` entries; nil: no ACME.
    public var acme: AcmeConfig?
    public var agents: [AgentGrant] = []
    /// `[[visitor]]`: who may reach private services, authenticated as agents are.
    public var visitors: [AgentGrant] = []
    public var http = HTTPSettings()
    /// `[limits]`: connection limits (LimitsConfig.swift).
    public var limits = LimitsConfig()
    /// `[[policy]]`: named access policies (Policy/AccessPolicy.swift), attached to listeners.
    public var policies: [AccessPolicy] = []
    /// `[[route_policy]]`: policies for hosts, paths and TCP ports whichever agent serves them.
    public var routePolicies = RoutePolicyTable()
    /// Lines of keys whose values are checked later, outside this parser (`tunnel.cert`, `tunnel.key`).
    public var sourceLines: [String: Int] = [:]
    /// Every `credential:NAME` path value, for the checks that need the filesystem.
    public var credentials: [CredentialReference] = []

    public struct Tunnel: Equatable, Sendable {
        /// The dedicated tunnel listener; nil when agents come only through HTTPS listeners
        /// with `tunnel = true` and `[tunnel] listen` is not set.
        public var listen: HostPort?
        /// The dedicated listener's certificate and key ("" without one).
        public var cert: String
        public var key: String
        public var tuning: TunnelTuning
        /// How long an agent may take to finish TLS and its upgrade request.
        public var handshakeTimeout: Duration = .seconds(10)
        /// PEM bundle of the CAs that issue agents' client certificates; when set, the
        /// gateway asks every agent for a certificate (mTLS).
        public var clientCA: String?
        /// PEM file of CRLs (one per issuing CA) checked against agents' certificates.
        public var clientCRL: String?
    }

    public struct Listener: Equatable, Sendable {
        public enum Kind: String, Sendable { case tcp, http, https }
        public var name: String
        public var kind: Kind
        public var listen: HostPort
        /// HTTPS only: the certificate for clients whose SNI no `[[certificate]]` matches
        /// (or who send none); nil means the first `[[certificate]]`.
        public var defaultCertificate: CertificateFiles?
        /// Every connection starts with a PROXY header from a trusted proxy.
        public var proxyProtocol = false
        /// HTTPS only: agents may open their tunnel here too (`GET /.fastgw/v1/tunnel`), with
        /// the listener's certificate (`tunnel = true`).
        public var tunnel = false
        /// `policy`: names of `[[policy]]` tables every connection and request on this
        /// listener must pass, in order.
        public var policies: [String] = []
    }

    /// A PEM certificate chain and its private key, with the config line naming them.
    public struct CertificateFiles: Equatable, Sendable {
        public var cert: String
        public var key: String
        public var line: Int?
    }

    /// One `[[certificate]]`: served to clients whose SNI matches `hosts`; with no `hosts`,
    /// the DNS names in the certificate itself decide.
    public struct Certificate: Equatable, Sendable {
        public var files: CertificateFiles
        public var hosts: [HostPattern]
    }

    /// What one agent may do: its credential and the ports and hosts it may claim.
    public struct AgentGrant: Equatable, Sendable {
        public var name: String
        /// The credential as configured: the token itself, or `sha256:<hex>` when the gateway
        /// holds only the token's hash (`token_sha256`). A reload that changes it closes the
        /// agent's connections.
        public var token: String
        public var allowPorts: [Int]
        public var allowHosts: [String]
        /// `allow_udp_ports`: the UDP ports its udp services may be published on (a grant of
        /// its own: `allow_ports` opens TCP ports only).
        public var allowUDPPorts: [Int] = []
        /// Token, certificate or both (`auth`); the certificate must satisfy `certificate`.
        public var auth: AgentAuth
        public var certificate: CertificateMatch?
        /// `policy`: names of `[[policy]]` tables for everything this agent serves, in order.
        public var policies: [String] = []
        /// `allow_services`: an agent's, the private services it may serve; a visitor's
        /// (`[[visitor]]`), the private services it may reach.
        public var allowServices: [String] = []

        public init(
            name: String, token: String, allowPorts: [Int], allowHosts: [String], auth: AgentAuth = .token,
            certificate: CertificateMatch? = nil
        ) {
            self.name = name
            self.token = token
            self.allowPorts = allowPorts
            self.allowHosts = allowHosts
            self.auth = auth
            self.certificate = certificate
        }

        static let hashPrefix = "sha256:"

        /// The SHA-256 the presented token must have, when only a hash is held.
        var tokenHash: [UInt8]? {
            guard token.hasPrefix(Self.hashPrefix) else { return nil }
            return Hex.decode(token.dropFirst(Self.hashPrefix.count))
        }

        /// Whether `presented` is this agent's token; `presentedHash` is its SHA-256 (computed
        /// once by the caller). Constant time in the bytes compared.
        public func accepts(_ presented: [UInt8], presentedHash: [UInt8]) -> Bool {
            // A grant that takes no token (auth = "certificate") accepts none, not the empty one.
            guard auth.usesToken, !token.isEmpty else { return false }
            if let hash = tokenHash { return ConstantTime.equal(presentedHash, hash) }
            return ConstantTime.equal(presented, Array(token.utf8))
        }

        /// The token's hash in hex, whichever way it was given: two grants with the same one
        /// share a token.
        var tokenHashHex: String {
            token.hasPrefix(Self.hashPrefix) ? String(token.dropFirst(Self.hashPrefix.count)) : SHA256.hex(token.utf8)
        }
    }

    /// Every public TCP port the gateway serves: explicit tcp listeners, then each granted
    /// port on `publicAddress`.
    public var tcpPorts: [(name: String, listen: HostPort)] {
        var out: [(String, HostPort)] = listeners.filter { $0.kind == .tcp }.map { ($0.name, $0.listen) }
        let explicit = Set(out.map { $0.1.port })
        var seen = Set<Int>()
        for agent in agents {
            for port in agent.allowPorts where !explicit.contains(port) && seen.insert(port).inserted {
                out.append(("tcp-\(port)", HostPort(host: publicAddress, port: port)))
            }
        }
        return out
    }

    /// Every public UDP port the gateway serves: each port in some agent's `allow_udp_ports`,
    /// on `publicAddress`, named `udp-PORT` (the name socket activation matches).
    public var udpPorts: [(name: String, listen: HostPort)] {
        var seen = Set<Int>()
        return agents.flatMap(\.allowUDPPorts).filter { seen.insert($0).inserted }.map {
            ("udp-\($0)", HostPort(host: publicAddress, port: $0))
        }
    }

    /// Names of the listeners every gateway has; a `[[listener]]` cannot take them.
    public static let reservedListenerNames = ["tunnel", "control", "metrics"]

    /// The dedicated tunnel listener: `[tunnel] listen`, or 0.0.0.0:7443 when no HTTPS
    /// listener takes agents (`tunnel = true`); with one, agents may come only through it.
    /// The dedicated listener needs `cert` and `key`; the agents' client certificates are
    /// read there only.
    static func checkTunnelListener(_ gateway: inout GatewayConfig, table: TableReader?, diagnostics: ConfigDiagnostics) {
        let shared = gateway.listeners.contains(where: \.tunnel)
        guard let t = table else {
            if !shared { diagnostics.error(line: nil, "[tunnel] section is required (listen, cert, key)") }
            return
        }
        if gateway.tunnel.listen == nil && !shared { gateway.tunnel.listen = HostPort(host: "0.0.0.0", port: 7443) }
        guard gateway.tunnel.listen != nil else {
            for key in ["cert", "key", "client_ca", "client_crl"] where t.has(key) {
                t.error(key, "[tunnel] \(key) applies to the dedicated tunnel listener: set [tunnel] listen too (agents on a tunnel = true listener use its certificate)")
            }
            return
        }
        if !t.has("cert") { t.error("cert", "[tunnel] cert is required (PEM certificate chain)") }
        if !t.has("key") { t.error("key", "[tunnel] key is required (PEM private key)") }
    }

    /// Whether connections on the listener named `name` (a `[[listener]]`, or a `tcp-PORT`
    /// from `tcpPorts`) start with a PROXY header.
    public func acceptsProxyHeader(listener name: String) -> Bool {
        if let l = listeners.first(where: { $0.name == name }) { return l.proxyProtocol }
        return proxyProtocol && tcpPorts.contains { $0.name == name }
    }

    public func policy(named name: String) -> AccessPolicy? {
        policies.first { $0.name == name }
    }

    /// `allow_services = ["db", "corpnet"]`: private service names, each once.
    static func serviceNames(_ t: inout TableReader) -> [String] {
        let names = t.strings("allow_services") ?? []
        for n in names where !Names.isValid(n) {
            t.error("allow_services", "service name \"\(n)\" is invalid: \(Names.rule)")
        }
        if Set(names).count != names.count { t.error("allow_services", "allow_services names a service twice") }
        return names
    }

    public func agent(named name: String) -> AgentGrant? {
        agents.first { $0.name == name }
    }
}

extension GatewayConfig {
    /// Parses and validates; `readFile` loads `token_file`s (injected so this stays I/O-free);
    /// `credentials`: where `credential:NAME` path values are (Credentials.swift).
    public static func parse(
        text: String, file: String, credentials: CredentialsLookup = .none, readFile: (String) throws -> String
    ) -> Result<GatewayConfig, ConfigError> {
        let (root, diagnostics) = ConfigParsing.root(text: text, file: file, credentials: credentials)
        guard var root else { return .failure(ConfigError(diagnostics.items)) }

        // Where proxy_protocol = true was set: an error there if nobody is trusted to send it.
        var proxyProtocolLines: [(Int?, String)] = []
        var gateway = GatewayConfig(
            file: file,
            tunnel: Tunnel(listen: nil, cert: "", key: "", tuning: TunnelTuning()))

        if var g = root.table("gateway") {
            if let d = g.duration("drain_timeout") { gateway.drainTimeout = d }
            if let a = g.string("public_address") { gateway.publicAddress = a }
            if let d = g.duration("startup_wait") { gateway.startupWait = d }
            gateway.sourceLines["gateway.trusted_proxies"] = g.line(of: "trusted_proxies")
            for text in g.strings("trusted_proxies") ?? [] {
                switch CIDR.parse(text) {
                case .success(let block): gateway.trustedProxies.insert(block)
                case .failure(let e): g.error("trusted_proxies", "trusted_proxies: \(e)")
                }
            }
            if let p = g.bool("proxy_protocol") {
                gateway.proxyProtocol = p
                if p { proxyProtocolLines.append((g.line(of: "proxy_protocol"), "[gateway] proxy_protocol")) }
            }
            g.rejectUnknownKeys()
        }

        // Whether the dedicated tunnel listener is wanted is known once the listeners are read.
        var tunnelTable: TableReader?
        if var t = root.table("tunnel") {
            gateway.tunnel.listen = t.hostPort("listen")
            if let c = t.path("cert") { gateway.tunnel.cert = c }
            if let k = t.path("key") { gateway.tunnel.key = k }
            if let d = t.duration("handshake_timeout") { gateway.tunnel.handshakeTimeout = d }
            gateway.tunnel.clientCA = t.path("client_ca")
            gateway.tunnel.clientCRL = t.path("client_crl")
            if gateway.tunnel.clientCRL != nil && gateway.tunnel.clientCA == nil {
                t.error("client_crl", "client_crl needs client_ca (the CA bundle whose certificates the CRLs revoke)")
            }
            for key in ["client_ca", "client_crl"] { gateway.sourceLines["tunnel.\(key)"] = t.line(of: key) }
            gateway.sourceLines["tunnel.cert"] = t.line(of: "cert")
            gateway.sourceLines["tunnel.key"] = t.line(of: "key")
            gateway.tunnel.tuning.read(from: &t)
            t.rejectUnknownKeys()
            tunnelTable = t
        }

        if var c = root.table("control") {
            if let s = c.path("socket", credential: false) { gateway.controlSocket = s }
            c.rejectUnknownKeys()
        }
        gateway.metrics = MetricsConfig.read(&root)
        gateway.acme = AcmeConfig.read(&root)

        if var l = root.table("log") {
            if let a = l.bool("access") { gateway.accessLog = a }
            l.rejectUnknownKeys()
        }

        if var h = root.table("http") {
            gateway.http.read(from: &h)
            h.rejectUnknownKeys()
        }

        if var l = root.table("limits") {
            gateway.limits.read(from: &l)
            l.rejectUnknownKeys()
        }

        var policyNames = Set<String>()
        for var p in root.tables("policy") {
            if let policy = AccessPolicy.read(&p, seen: &policyNames, readFile: readFile) { gateway.policies.append(policy) }
        }
        // Attachments, checked against the policy names once all are read.
        var policyUses: [(TableReader, [String])] = []
        var routePolicyClaims = RoutePolicy.Claims()
        var routePolicyPorts: [(TableReader, [Int])] = []
        var routePolicies: [RoutePolicy] = []
        // Attachments that carry only TCP connections, which no credentials come with.
        var tcpPolicyUses: [(TableReader, [String], String)] = []
        for var r in root.tables("route_policy") {
            if let rp = RoutePolicy.read(&r, claims: &routePolicyClaims) {
                routePolicies.append(rp)
                policyUses.append((r, rp.policies))
                routePolicyPorts.append((r, rp.ports))
                if !rp.ports.isEmpty { tcpPolicyUses.append((r, rp.policies, "ports")) }
            }
        }
        gateway.routePolicies = RoutePolicyTable(routePolicies)

        var listenerNames = Set<String>()
        var listenerPorts = Set<Int>()
        for var l in root.tables("listener") {
            let name = l.entryName(kind: "listener", seen: &listenerNames)
            if GatewayConfig.reservedListenerNames.contains(name) {
                // systemd's FileDescriptorName= tells listeners apart by these names.
                l.error("name", "listener name \"\(name)\" is reserved for the built-in \(name) listener")
            }
            let proto = l.string("protocol") ?? "tcp"
            let listen = l.hostPort("listen")
            if !l.has("listen") { l.error("listen", "listen is required") }
            var certificate: CertificateFiles?
            if proto == "https" {
                certificate = Self.certificateFiles(&l, required: false)
            } else {
                for key in ["cert", "key"] {
                    l.refuse(key, "\(key) applies to protocol \"https\" listeners only")
                }
            }
            let proxyProtocol = l.bool("proxy_protocol") ?? false
            let sharedTunnel = l.bool("tunnel") ?? false
            if sharedTunnel && proto != "https" {
                l.error("tunnel", "tunnel = true needs protocol \"https\" (agents speak TLS)")
            }
            if proxyProtocol { proxyProtocolLines.append((l.line(of: "proxy_protocol"), "listener \"\(name)\": proxy_protocol")) }
            let policies = l.policyNames()
            policyUses.append((l, policies))
            l.rejectUnknownKeys()
            guard let kind = Listener.Kind(rawValue: proto) else {
                l.error("protocol", "protocol \"\(proto)\" is not one of: tcp, http, https")
                continue
            }
            if kind == .tcp { tcpPolicyUses.append((l, policies, "a tcp listener")) }
            if let listen {
                if !listenerPorts.insert(listen.port).inserted {
                    l.error("listen", "port \(listen.port) is already used by another listener")
                }
                var listener = Listener(
                    name: name, kind: kind, listen: listen, defaultCertificate: certificate, proxyProtocol: proxyProtocol,
                    policies: policies)
                listener.tunnel = sharedTunnel && kind == .https
                gateway.listeners.append(listener)
            }
        }

        for var c in root.tables("certificate") {
            if c.bool("acme") == true {
                let hosts = AcmeConfig.readCertificate(&c, acme: gateway.acme)
                c.rejectUnknownKeys()
                if let hosts, !hosts.isEmpty { gateway.acme?.certificates.append(hosts) }
                continue
            }
            let files = Self.certificateFiles(&c, required: true)
            var hosts: [HostPattern] = []
            for text in c.strings("hosts") ?? [] {
                switch HostPattern.parse(text) {
                case .success(let p): hosts.append(p)
                case .failure(let e): c.error("hosts", "hosts: \(e)")
                }
            }
            c.rejectUnknownKeys()
            if let files { gateway.certificates.append(Certificate(files: files, hosts: hosts)) }
        }
        // With ACME a listener may have no certificate of its own: names without one are
        // refused in the handshake (PublicCertificates).
        for l in gateway.listeners where l.kind == .https && l.defaultCertificate == nil && gateway.certificates.isEmpty
            && gateway.acme == nil
        {
            diagnostics.error(line: nil, "listener \"\(l.name)\": protocol \"https\" needs a certificate: give it cert and key, or add a [[certificate]]")
        }
        Self.checkTunnelListener(&gateway, table: tunnelTable, diagnostics: diagnostics)

        var agentNames = Set<String>()
        for var a in root.tables("agent") {
            let name = a.entryName(kind: "agent", seen: &agentNames)
            let credentials = AgentGrant.readCredentials(&a, hasClientCA: gateway.tunnel.clientCA != nil, readFile: readFile)
            let ports = a.ints("allow_ports", range: 1...65535) ?? []
            let hosts = a.strings("allow_hosts") ?? []
            let udpPorts = a.ints("allow_udp_ports", range: 1...65535) ?? []
            let policies = a.policyNames()
            policyUses.append((a, policies))
            let privateServices = Self.serviceNames(&a)
            a.rejectUnknownKeys()
            if let c = credentials {
                var grant = AgentGrant(
                    name: name, token: c.token, allowPorts: ports, allowHosts: hosts, auth: c.auth, certificate: c.certificate)
                grant.policies = policies
                grant.allowServices = privateServices
                grant.allowUDPPorts = udpPorts
                gateway.agents.append(grant)
            }
        }
        var visitorNames = Set<String>()
        for var v in root.tables("visitor") {
            let name = v.entryName(kind: "visitor", seen: &visitorNames)
            let credentials = AgentGrant.readCredentials(&v, hasClientCA: gateway.tunnel.clientCA != nil, readFile: readFile)
            let services = Self.serviceNames(&v)
            if services.isEmpty && !v.has("allow_services") {
                v.error("allow_services", "allow_services is required: the private services this visitor may reach, e.g. [\"db\"]")
            }
            v.rejectUnknownKeys()
            if let c = credentials {
                var grant = AgentGrant(name: name, token: c.token, allowPorts: [], allowHosts: [], auth: c.auth, certificate: c.certificate)
                grant.allowServices = services
                gateway.visitors.append(grant)
            }
        }
        if gateway.agents.isEmpty && !diagnostics.failed {
            diagnostics.error(line: nil, "no [[agent]] is configured: no agent could connect")
        }
        let tokens = gateway.agents.filter(\.auth.usesToken).map(\.tokenHashHex)
        let all = tokens + gateway.visitors.filter(\.auth.usesToken).map(\.tokenHashHex)
        if Set(tokens).count != tokens.count {
            diagnostics.error(line: nil, "two agents share one token: give every agent its own")
        } else if Set(all).count != all.count {
            diagnostics.error(line: nil, "two visitors, or a visitor and an agent, share one token: give every one its own")
        }

        for (t, names) in policyUses {
            for name in names where !policyNames.contains(name) {
                t.error("policy", "policy \"\(name)\" is not defined by any [[policy]]")
            }
        }

        for (t, names, what) in tcpPolicyUses {
            for name in names {
                guard let p = gateway.policy(named: name), p.authenticates else { continue }
                let key = p.basicAuth != nil ? "basic_auth" : "forward_auth"
                t.error("policy", "policy \"\(name)\" has \(key), which \(what) cannot use: TCP connections carry no HTTP credentials")
            }
        }

        let servedPorts = Set(gateway.tcpPorts.map(\.listen.port))
        for (t, ports) in routePolicyPorts {
            for port in ports where !servedPorts.contains(port) {
                t.error("ports", "port \(port) is not a TCP port of this gateway (no agent's allow_ports names it)")
            }
        }

        if gateway.trustedProxies.isEmpty {
            for (line, what) in proxyProtocolLines {
                diagnostics.error(line: line, "\(what) = true needs [gateway] trusted_proxies: the addresses of the balancers that send the header")
            }
        }

        root.rejectUnknownKeys()
        gateway.credentials = root.paths.references
        if diagnostics.failed { return .failure(ConfigError(diagnostics.items)) }
        return .success(gateway)
    }

    /// `cert` and `key` together (path values: relative to the config file, or credentials);
    /// one without the other is an error, and so are neither when `required`.
    private static func certificateFiles(_ t: inout TableReader, required: Bool) -> CertificateFiles? {
        let cert = t.path("cert")
        let key = t.path("key")
        switch (cert, key) {
        case (let c?, let k?):
            return CertificateFiles(cert: c, key: k, line: t.line(of: "cert"))
        case (nil, nil):
            if required { t.error("cert", "cert and key are required (PEM certificate chain and private key)") }
        case (nil, _):
            t.error("key", "key is given without cert")
        case (_, nil):
            t.error("cert", "cert is given without key")
        }
        return nil
    }
}
