/// The client certificate an agent presented on its tunnel connection, as the TLS layer read
/// it: whether it verified against `[tunnel] client_ca` (and `client_crl`), and the names and
/// hash a grant can be matched against. The TLS handshake never fails on a bad certificate, so
/// that the gateway can answer with the reason; this value carries that reason.
public struct PeerCertificate: Equatable, Sendable {
    /// The outcome of chain verification: the first error OpenSSL reported, classified.
    public enum Verification: Equatable, Sendable {
        case valid
        /// Not issued by a CA in `client_ca` (or a broken or self-signed chain).
        case unknownCA
        case revoked
        case expired
        case notYetValid
        /// Any other failure, in OpenSSL's words (no CRL for the issuer, a CRL out of date,
        /// a certificate not made for client authentication …).
        case invalid(String)
    }

    public var verification: Verification
    /// The subject's common names (usually one).
    public var commonNames: [String]
    /// subjectAltName entries of type DNS and URI.
    public var dnsNames: [String]
    public var uris: [String]
    /// SHA-256 of the leaf certificate's DER encoding (what `certificate_sha256` pins).
    public var sha256: [UInt8]
    /// The leaf certificate and the intermediates the agent sent, DER, kept so that a reload
    /// can verify them again against a new `client_ca` / `client_crl`.
    public var chainDER: [[UInt8]]

    public init(
        verification: Verification, commonNames: [String] = [], dnsNames: [String] = [], uris: [String] = [],
        sha256: [UInt8], chainDER: [[UInt8]] = []
    ) {
        self.verification = verification
        self.commonNames = commonNames
        self.dnsNames = dnsNames
        self.uris = uris
        self.sha256 = sha256
        self.chainDER = chainDER
    }

    /// The names as an operator reads them in a refusal, bounded in length.
    var namesForDisplay: String {
        let all = commonNames.map { "CN=\($0)" } + dnsNames.map { "DNS:\($0)" } + uris.map { "URI:\($0)" }
        guard !all.isEmpty else { return "no names" }
        let shown = all.prefix(4).map { $0.clipped(head: 60, tail: 20) }.joined(separator: ", ")
        return all.count > 4 ? shown + ", … (\(all.count) names)" : shown
    }
}

/// How a grant's certificate must name its agent (`certificate_subject` or `certificate_sha256`).
public enum CertificateMatch: Equatable, Sendable {
    /// A common name, a DNS subjectAltName (compared without regard to ASCII case) or a URI
    /// subjectAltName equal to this string. No wildcard expansion: a certificate names an agent.
    case subject(String)
    /// The SHA-256 of the leaf certificate's DER encoding.
    case sha256([UInt8])
}

/// Why a certificate does not authenticate an agent. `code` labels stats and log records;
/// `message` is the one-line reason the agent logs.
public struct CertificateRefusal: Equatable, Sendable, Error {
    public enum Code: String, Sendable, CaseIterable {
        case noCertificate = "no_certificate"
        case unknownCA = "unknown_ca"
        case revoked
        case expired
        case notYetValid = "not_yet_valid"
        case invalid
        case subjectMismatch = "subject_mismatch"
        case pinMismatch = "pin_mismatch"
    }

    public var code: Code
    public var message: String

    /// 401 when the certificate proves nothing; 403 when it is a good certificate that is not
    /// this agent's (as for a token that belongs to another agent).
    public var status: Int {
        switch code {
        case .subjectMismatch, .pinMismatch: return 403
        default: return 401
        }
    }
}

public enum CertificateIdentity {
    /// Whether `certificate` authenticates `agent` under `match`; nil when it does. Pure: the
    /// TLS layer has already verified the chain and recorded the outcome.
    /// `peer`: what the name is (an agent, or a visitor), for the messages.
    public static func check(
        _ certificate: PeerCertificate?, agent: String, match: CertificateMatch, peer: TunnelHandshake.Peer = .agent
    ) -> CertificateRefusal? {
        let role = peer == .visitor ? "visitor" : "agent"
        let who = "\(role) \"\(agent)\""
        guard let certificate else {
            return .init(code: .noCertificate, message: "\(who) must present a client certificate; none was sent (set cert and key in the \(role)'s [\(role)] table)")
        }
        switch certificate.verification {
        case .valid:
            break
        case .unknownCA:
            return .init(code: .unknownCA, message: "client certificate of \(who) is not issued by a CA the gateway trusts (client_ca)")
        case .revoked:
            return .init(code: .revoked, message: "client certificate of \(who) is revoked")
        case .expired:
            return .init(code: .expired, message: "client certificate of \(who) has expired")
        case .notYetValid:
            return .init(code: .notYetValid, message: "client certificate of \(who) is not valid yet")
        case .invalid(let why):
            return .init(code: .invalid, message: "client certificate of \(who) is not accepted: \(why.clipped(head: 120, tail: 40))")
        }
        switch match {
        case .subject(let wanted):
            guard names(certificate, wanted) else {
                return .init(code: .subjectMismatch, message: "client certificate (\(certificate.namesForDisplay)) does not name \(who)")
            }
        case .sha256(let pin):
            guard ConstantTime.equal(certificate.sha256, pin) else {
                return .init(code: .pinMismatch, message: "client certificate of \(who) does not match its certificate_sha256 pin (presented sha256 \(Hex.encode(certificate.sha256)))")
            }
        }
        return nil
    }

    /// CN and URI names compare exactly; DNS names case-insensitively (RFC 4343).
    static func names(_ c: PeerCertificate, _ wanted: String) -> Bool {
        c.commonNames.contains(wanted) || c.uris.contains(wanted)
            || c.dnsNames.contains { $0.asciiLowercased() == wanted.asciiLowercased() }
    }

    /// A `certificate_sha256` value: 64 hex digits, optionally in pairs separated by colons
    /// (as `openssl x509 -fingerprint -sha256` prints it).
    public static func parsePin(_ text: String) -> [UInt8]? {
        let digits = text.utf8.count == 95 ? text.split(separator: ":", omittingEmptySubsequences: false) : [Substring(text)]
        if digits.count > 1, !digits.allSatisfy({ $0.utf8.count == 2 }) { return nil }
        let joined = digits.joined()
        guard joined.utf8.count == 64 else { return nil }
        return Hex.decode(Substring(joined))
    }
}
