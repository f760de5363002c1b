import COpenSSL
import Protocol

/// Where a TLS server finds the CAs (and CRLs) that client certificates are verified against:
/// the tunnel's `client_ca` and `client_crl`.
struct ClientTrust: Sendable {
    let ca: String
    let crl: String?
}

extension ClientTrust {
    init?(_ tunnel: GatewayConfig.Tunnel) {
        guard let ca = tunnel.clientCA else { return nil }
        self.ca = ca
        self.crl = tunnel.clientCRL
    }
}

extension PeerCertificate.Verification {
    /// OpenSSL's verification result, classified for the refusal an agent reads.
    init(x509Error code: Int32) {
        switch code {
        case X509_V_OK:
            self = .valid
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
             X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
             X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, X509_V_ERR_CERT_UNTRUSTED, X509_V_ERR_CERT_SIGNATURE_FAILURE:
            self = .unknownCA
        case X509_V_ERR_CERT_REVOKED:
            self = .revoked
        case X509_V_ERR_CERT_HAS_EXPIRED:
            self = .expired
        case X509_V_ERR_CERT_NOT_YET_VALID:
            self = .notYetValid
        case X509_V_ERR_UNABLE_TO_GET_CRL:
            self = .invalid("no CRL of its issuer in client_crl")
        case X509_V_ERR_CRL_HAS_EXPIRED:
            self = .invalid("the CRL of its issuer in client_crl is out of date (past its next update)")
        case -1:
            self = .invalid("not a certificate chain")
        default:
            self = .invalid(String(cString: X509_verify_cert_error_string(Int(code))))
        }
    }
}

extension PeerCertificate {
    /// The certificate the client presented in a finished handshake, nil when it sent none.
    /// `firstError` is what the verify callback recorded.
    static func read(from ssl: OpaquePointer, firstError: Int32) -> PeerCertificate? {
        guard let leaf = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(leaf) }
        var code = firstError
        if code == X509_V_OK { code = Int32(truncatingIfNeeded: SSL_get_verify_result(ssl)) }
        let der = Self.der(leaf)
        var chain = [der]
        for i in 0..<fastgw_SSL_peer_chain_count(ssl) {
            if let c = fastgw_SSL_peer_chain_at(ssl, i) { chain.append(Self.der(c)) }
        }
        return PeerCertificate(
            verification: Verification(x509Error: code), commonNames: names(leaf, kind: 0), dnsNames: names(leaf, kind: 1),
            uris: names(leaf, kind: 2), sha256: SHA256.hash(der), chainDER: chain)
    }

    private static func der(_ cert: OpaquePointer) -> [UInt8] {
        let length = i2d_X509(cert, nil)
        guard length > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        bytes.withUnsafeMutableBufferPointer { buffer in
            var p = buffer.baseAddress
            _ = i2d_X509(cert, &p)
        }
        return bytes
    }

    /// Names of one kind (see `fastgw_X509_names`), at most a bounded number of bytes.
    private static func names(_ cert: OpaquePointer, kind: Int32) -> [String] {
        let needed = min(fastgw_X509_names(cert, kind, nil, 0), 16 * 1024)
        guard needed > 0 else { return [] }
        var bytes = [CChar](repeating: 0, count: needed)
        let used = fastgw_X509_names(cert, kind, &bytes, needed)
        // Names that did not fit are left out whole: only complete lines count.
        let kept = used <= needed ? bytes[...] : bytes[..<(bytes.lastIndex(of: 0x0a).map { $0 + 1 } ?? 0)]
        return String(decoding: kept.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: "\n").map(String.init)
    }
}

extension TLSContext {
    /// `certificate` with its chain verified again against this context's client trust (a
    /// reload's new `client_ca` / `client_crl`, and the time now).
    func reverify(_ certificate: PeerCertificate) -> PeerCertificate {
        var again = certificate
        let bytes = certificate.chainDER.flatMap { $0 }
        let code = bytes.withUnsafeBufferPointer { fastgw_verify_client_chain(ctx, $0.baseAddress, $0.count) }
        again.verification = requestsClientCertificate ? PeerCertificate.Verification(x509Error: code) : .unknownCA
        return again
    }
}

extension TLSContext {
    /// The tunnel listener's context: its certificate, and client certificates requested
    /// when `client_ca` is set.
    /// The dedicated tunnel listener's context; nil without one (agents come only through
    /// HTTPS listeners with `tunnel = true`, which use their own certificates).
    static func tunnel(_ config: GatewayConfig) throws(TLSError) -> TLSContext? {
        guard config.tunnel.listen != nil else { return nil }
        return try .server(
            certificateChain: config.tunnel.cert, privateKey: config.tunnel.key, alpn: ["http/1.1"],
            clientTrust: ClientTrust(config.tunnel))
    }
}

/// A reload's verification of live connections' certificates against the new trust, done
/// once per distinct chain (an agent's connections share one) and outside any lock.
struct CertificateReverification {
    private let tls: TLSContext?
    private var verdicts: [[[UInt8]]: PeerCertificate.Verification] = [:]

    init(tls: TLSContext?, certificates: [PeerCertificate]) {
        self.tls = tls
        for c in certificates where verdicts[c.chainDER] == nil {
            verdicts[c.chainDER] = c.reverified(by: tls).verification
        }
    }

    /// A certificate not seen at init (a connection registered meanwhile) is verified now.
    func verify(_ certificate: PeerCertificate) -> PeerCertificate {
        guard let verdict = verdicts[certificate.chainDER] else { return certificate.reverified(by: tls) }
        var c = certificate
        c.verification = verdict
        return c
    }
}

extension PeerCertificate {
    /// Verified again against `tls`'s client trust; with no dedicated tunnel listener (a
    /// reload removed it) nothing vouches for it any more.
    func reverified(by tls: TLSContext?) -> PeerCertificate {
        guard let tls else {
            var c = self
            c.verification = .unknownCA
            return c
        }
        return tls.reverify(self)
    }
}
