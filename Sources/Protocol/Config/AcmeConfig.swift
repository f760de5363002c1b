/// `[acme]`: where the gateway obtains certificates for the hosts no `[[certificate]]` covers
/// (RFC 8555), and `[[certificate]] acme = true` entries that name hosts explicitly.
public struct AcmeConfig: Equatable, Sendable {
    /// The directory URL (`https://…/directory`).
    public var directory: String
    public var email: String?
    /// PEM bundle trusted for the ACME server's TLS (a private or test CA); nil: system store.
    public var ca: String?
    /// Account key, certificate keys and chains live here (created 0700, files 0600).
    public var stateDirectory = "/var/lib/fastgw/acme"
    /// Challenge types the gateway answers, in the order it prefers them.
    public var challenges: [String] = AcmeConfig.challengeNames
    /// Renew this long before expiry; nil: at two thirds of the lifetime (or the ARI window).
    public var renewBefore: Duration?
    /// `[[certificate]] acme = true`: each entry's exact hosts, one certificate per entry.
    public var certificates: [[String]] = []
    public var line: Int?

    /// http-01 on the http listeners, tls-alpn-01 on the https listeners (RFC 8737).
    public static let challengeNames = ["http-01", "tls-alpn-01"]

    public init(directory: String) {
        self.directory = directory
    }

    /// The `[acme]` table of `root`, if any; nil when absent or unusable (errors reported).
    static func read(_ root: inout TableReader) -> AcmeConfig? {
        guard var t = root.table("acme") else { return nil }
        let directory = t.string("directory")
        if directory == nil && !t.has("directory") {
            t.error("directory", "[acme] directory is required (for example \"https://acme-v02.api.letsencrypt.org/directory\")")
        }
        if let d = directory, !d.lowercased().hasPrefix("https://") {
            t.error("directory", "[acme] directory \"\(d)\" must be an https:// URL (RFC 8555 §6.1)")
        }
        var config = AcmeConfig(directory: directory ?? "")
        config.line = t.line(of: "directory")
        config.email = t.string("email")
        if let e = config.email, !e.contains("@") || e.contains(" ") {
            t.error("email", "[acme] email \"\(e)\" is not an address")
        }
        config.ca = t.path("ca")
        if let s = t.path("state_directory", credential: false) { config.stateDirectory = s }
        if let c = t.strings("challenges") {
            for name in c where !challengeNames.contains(name) {
                t.error("challenges", "challenges: \"\(name)\" is not one of: \(challengeNames.joined(separator: ", ")) (dns-01 is not supported)")
            }
            if c.isEmpty { t.error("challenges", "challenges is empty: name at least one of \(challengeNames.joined(separator: ", "))") }
            if Set(c).count != c.count { t.error("challenges", "challenges names a type twice") }
            config.challenges = c
        }
        if let d = t.duration("renew_before") {
            if d <= .zero { t.error("renew_before", "renew_before must be positive") }
            config.renewBefore = d
        }
        t.rejectUnknownKeys()
        return directory == nil ? nil : config
    }

    /// The hosts of a `[[certificate]] acme = true`: exact names only (a wildcard needs
    /// DNS-01, which fastgw does not do), no cert or key.
    /// A host in two of them would make two certificates compete for it (and two state
    /// entries by one name), so it is refused.
    static func readCertificate(_ c: inout TableReader, acme: AcmeConfig?) -> [String]? {
        let earlier = Set((acme?.certificates ?? []).joined())
        for key in ["cert", "key"] {
            c.refuse(key, "\(key): a certificate with acme = true is obtained by the gateway, it has no \(key) file")
        }
        if acme == nil {
            c.error("acme", "acme = true needs an [acme] section (directory, email)")
        }
        guard c.has("hosts") else {
            c.error("hosts", "acme = true needs hosts (the exact names to obtain a certificate for)")
            return nil
        }
        var hosts: [String] = []
        for text in c.strings("hosts") ?? [] {
            switch HostPattern.parse(text) {
            case .success(.exact(let name)) where earlier.contains(name):
                c.error("hosts", "hosts: \"\(name)\" is already in another [[certificate]] with acme = true; a host gets one ACME certificate")
            case .success(.exact(let name)): if !hosts.contains(name) { hosts.append(name) }
            case .success(.wildcard):
                c.error("hosts", "hosts: \"\(text)\": ACME wildcard certificates need the DNS-01 challenge, which fastgw does not do; use a [[certificate]] with cert and key for it")
            case .failure(let e): c.error("hosts", "hosts: \(e)")
            }
        }
        if hosts.isEmpty { c.error("hosts", "hosts is empty") }
        return hosts
    }
}
