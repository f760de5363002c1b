/// How the gateway authenticates one agent (`[[agent]] auth`): by bearer token (the default),
/// by client certificate on the tunnel's TLS, or by both.
public enum AgentAuth: String, Equatable, Sendable, CaseIterable {
    case token
    case certificate
    case tokenAndCertificate = "token+certificate"

    public var usesToken: Bool { self != .certificate }
    public var usesCertificate: Bool { self != .token }
}

extension GatewayConfig.AgentGrant {
    /// What an `[[agent]]` table says about authentication: `auth`, the token keys it needs,
    /// and `certificate_subject` / `certificate_sha256`. Nil after an error (reported on its line).
    struct Credentials {
        var auth: AgentAuth
        /// The token as `AgentGrant.token` holds it; empty when `auth` takes no token.
        var token: String
        var certificate: CertificateMatch?
    }

    static func readCredentials(
        _ a: inout TableReader, hasClientCA: Bool, readFile: (String) throws -> String
    ) -> Credentials? {
        let auth = a.oneOf("auth", AgentAuth.allCases.map(\.rawValue)).flatMap(AgentAuth.init(rawValue:))
        if a.has("auth"), auth == nil {
            // The bad value is reported; read the rest so that it is not also "unknown keys".
            _ = (a.string("token"), a.string("token_file"), a.string("token_sha256"))
            _ = (a.string("certificate_subject"), a.string("certificate_sha256"))
            return nil
        }
        let mode = auth ?? .token
        var failed = false
        let certificate = readCertificateMatch(&a, mode: mode, hasClientCA: hasClientCA, failed: &failed)
        var token = ""
        if mode.usesToken {
            guard let t = Secrets.grantCredential(&a, readFile: readFile) else { return nil }
            token = t
        } else {
            for key in ["token", "token_file", "token_sha256"] {
                a.refuse(key, "\(key) is not used with auth = \"certificate\"; use auth = \"token+certificate\" to require both")
            }
            if ["token", "token_file", "token_sha256"].contains(where: a.has) { failed = true }
        }
        return failed ? nil : Credentials(auth: mode, token: token, certificate: certificate)
    }

    private static func readCertificateMatch(
        _ a: inout TableReader, mode: AgentAuth, hasClientCA: Bool, failed: inout Bool
    ) -> CertificateMatch? {
        let subject = a.string("certificate_subject")
        let pinText = a.string("certificate_sha256")
        guard mode.usesCertificate else {
            for key in ["certificate_subject", "certificate_sha256"] where a.has(key) {
                a.error(key, "\(key) applies to auth = \"certificate\" or \"token+certificate\" (this agent has auth = \"token\")")
                failed = true
            }
            return nil
        }
        if !hasClientCA {
            a.error("auth", "auth = \"\(mode.rawValue)\" needs [tunnel] client_ca (the CA bundle that issues agent certificates)")
            failed = true
        }
        switch (subject, pinText) {
        case (.some, .some):
            a.error("certificate_sha256", "set one of certificate_subject and certificate_sha256, not both")
        case (nil, nil):
            a.error("auth", "auth = \"\(mode.rawValue)\" needs certificate_subject (a CN, DNS or URI name in the agent's certificate) or certificate_sha256 (a pin of it)")
        case (let s?, nil):
            if s.isEmpty || s.utf8.count > 255 || s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
                a.error("certificate_subject", "certificate_subject must be 1-255 characters without control characters")
            } else {
                return failed ? nil : .subject(s)
            }
        case (nil, let p?):
            if let pin = CertificateIdentity.parsePin(p) {
                return failed ? nil : .sha256(pin)
            }
            a.error("certificate_sha256", "certificate_sha256 must be 64 hex digits (optionally in colon-separated pairs): the SHA-256 of the agent's certificate, e.g. from openssl x509 -in agent.crt -noout -fingerprint -sha256")
        }
        failed = true
        return nil
    }
}
