/// Where an order's challenge answers are published while it is pending. The client withdraws
/// every answer it published, whatever the outcome of the order.
protocol AcmeChallengeSink: Sendable {
    /// HTTP-01: answer GET /.well-known/acme-challenge/<token> with keyAuthorization.
    func publishHTTP01(token: String, keyAuthorization: String)
    /// TLS-ALPN-01 (RFC 8737): serve this self-signed certificate/key to a handshake whose
    /// SNI is `host` and whose only ALPN protocol is "acme-tls/1".
    func publishTLSALPN01(host: String, certificatePEM: String, privateKeyPEM: String)
    func withdrawHTTP01(token: String)
    func withdrawTLSALPN01(host: String)
}

/// What an order produced.
struct AcmeIssued: Sendable {
    /// The certificate chain, leaf first, as PEM.
    var chainPEM: String
    /// Seconds since the epoch.
    var notBefore: Int
    var notAfter: Int
    /// Issuer CN (or O) of the leaf, for `fastgwctl certificates`.
    var issuer: String
}
