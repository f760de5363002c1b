import Protocol

/// The certificates HTTPS listeners choose from by SNI: each covers the hosts its
/// `[[certificate]]` names, or else the DNS names in the certificate itself.
final class CertificateSelector: Sendable {
    let patterns: [HostPattern]
    /// `contexts[i]` serves the hosts `patterns[i]` matches.
    let contexts: [TLSContext]
    /// The certificates obtained over ACME, consulted for names no static one covers.
    let acme: AcmeCertificateStore?

    init(_ entries: [(HostPattern, TLSContext)], acme: AcmeCertificateStore? = nil) {
        patterns = entries.map(\.0)
        contexts = entries.map(\.1)
        self.acme = acme
    }

    enum Choice {
        case context(TLSContext)
        case listenerDefault
        /// An ACME host before its first certificate: refused (unrecognized_name) rather than
        /// shown a certificate for other names.
        case refuse
    }

    /// The certificate for a client's server name.
    func choice(for serverName: String) -> Choice {
        let host = HostPattern.normalize(serverName)
        if let i = HostPattern.bestMatch(in: patterns, for: host) { return .context(contexts[i]) }
        switch acme?.lookup(host) ?? .unmanaged {
        case .issued(let context): return .context(context)
        case .pending:
            acme?.refusedBeforeIssue(host)
            return .refuse
        case .unmanaged: return .listenerDefault
        }
    }

    private func index(for name: String) -> Int? {
        HostPattern.bestMatch(in: patterns, for: HostPattern.normalize(name))
    }

    /// Whether a request for `host` may be answered on a connection whose handshake chose its
    /// certificate for `serverName` (RFC 9110 §7.4: else 421).
    func sameCertificate(_ host: String, _ serverName: String) -> Bool {
        let a = index(for: host), b = index(for: serverName)
        if a == nil, b == nil, let acme, case .issued(let x) = acme.lookup(HostPattern.normalize(serverName)) {
            guard case .issued(let y) = acme.lookup(HostPattern.normalize(host)) else { return false }
            return x === y
        }
        if a == b { return true }
        guard let a, let b else { return false }
        return contexts[a] === contexts[b]
    }
}

/// The TLS contexts of every HTTPS listener, built from the config at start and on reload (a
/// certificate that does not load fails the reload and the old ones stay).
struct PublicCertificates: Sendable {
    /// Listener name → its context: the default certificate, switching by SNI.
    let listeners: [String: TLSContext]
    let selector: CertificateSelector
    /// Certificate file → its expiry (seconds since the epoch), for the stats.
    var expiries: [String: Int] = [:]

    /// The names the ACME plan treats as served already: the static certificates' patterns
    /// and the DNS names of each https listener's own default certificate (a name that one
    /// serves needs no order).
    var acmeCovered: [HostPattern] {
        selector.patterns + listeners.values.flatMap { $0.certificateDNSNames.compactMap { try? HostPattern.parse($0).get() } }
    }

    /// ALPN protocols public HTTPS clients may pick, best first.
    static let alpn = ["h2", "http/1.1"]

    /// `acme`: the gateway's ACME state, which outlives this build (nil: no `[acme]`).
    static func build(_ config: GatewayConfig, acme: AcmeTLSSelection? = nil) -> Result<PublicCertificates, ConfigError> {
        do throws(ConfigError) {
            var entries: [(HostPattern, TLSContext)] = []
            var expiries: [String: Int] = [:]
            for c in config.certificates {
                let context = try load(c.files, config: config)
                expiries[c.files.cert] = context.certificateExpiry
                var hosts = c.hosts
                if hosts.isEmpty {
                    hosts = context.certificateDNSNames.compactMap { try? HostPattern.parse($0).get() }
                    if hosts.isEmpty {
                        throw error(config, c.files, "certificate \(c.files.cert) has no DNS names: list the hosts it serves in hosts")
                    }
                }
                entries += hosts.map { ($0, context) }
            }
            let selector = CertificateSelector(entries, acme: acme?.store)
            var listeners: [String: TLSContext] = [:]
            for l in config.listeners where l.kind == .https {
                // With only ACME certificates a listener has no default: a name with no
                // certificate fails its handshake.
                let files = l.defaultCertificate ?? config.certificates.first?.files
                let context = try load(files, config: config, selector: selector, acme: acme)
                listeners[l.name] = context
                if let files { expiries[files.cert] = context.certificateExpiry }
            }
            return .success(PublicCertificates(listeners: listeners, selector: selector, expiries: expiries))
        } catch {
            return .failure(error)
        }
    }

    static func load(
        _ files: GatewayConfig.CertificateFiles?, config: GatewayConfig, selector: CertificateSelector? = nil,
        acme: AcmeTLSSelection? = nil
    ) throws(ConfigError) -> TLSContext {
        do {
            return try TLSContext.server(
                certificateChain: files?.cert, privateKey: files?.key, alpn: alpn, selector: selector, acme: acme)
        } catch {
            throw Self.error(config, files, error.message)
        }
    }

    private static func error(_ config: GatewayConfig, _ files: GatewayConfig.CertificateFiles?, _ message: String) -> ConfigError {
        ConfigError([ConfigDiagnostic(file: config.file, line: files?.line, message: message)])
    }
}
