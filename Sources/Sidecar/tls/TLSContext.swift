import COpenSSL
import Protocol

/// An OpenSSL `SSL_CTX` configured once at start-up or reload; immutable afterwards, which is
/// what makes sharing it across event loops safe (OpenSSL locks what `SSL_new` touches).
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer
    /// ALPN protocols this side supports, in preference order.
    let alpn: [String]
    /// The same list in ALPN wire format (length-prefixed), kept alive for the C callback.
    let alpnWire: [UInt8]
    /// Server side: the other certificates a handshake may switch to by SNI (kept alive here
    /// for the C callback that receives it unretained).
    let selector: CertificateSelector?
    /// Server side: clients are asked for a certificate (`ClientTrust`), whose verification
    /// outcome the handshake reports instead of failing on it.
    private(set) var requestsClientCertificate = false
    /// Server side: kept alive here for the ClientHello callback that receives it unretained.
    private(set) var acme: AcmeTLSSelection?

    private init(ctx: OpaquePointer, alpn: [String], selector: CertificateSelector? = nil) {
        self.ctx = ctx
        self.alpn = alpn
        self.alpnWire = alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        self.selector = selector
    }

    deinit {
        SSL_CTX_free(ctx)
    }

    /// Server side: certificate chain and key from PEM files. With a `selector`, a client's
    /// SNI may switch the handshake to one of its certificates; this one is the default. With
    /// `clientTrust`, clients are asked for a certificate (mTLS, see `ClientTrust`).
    /// With `acme`, the handshake also consults the ACME challenges and certificates; a
    /// listener that only serves ACME certificates has no identity of its own (nil files).
    static func server(
        certificateChain: String?, privateKey: String?, alpn: [String], selector: CertificateSelector? = nil,
        clientTrust: ClientTrust? = nil, acme: AcmeTLSSelection? = nil
    ) throws(TLSError) -> TLSContext {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw .configuration("cannot create TLS context: \(TLSError.drainOpenSSLErrors())")
        }
        let context = TLSContext(ctx: ctx, alpn: alpn, selector: selector)
        try context.applyCommonSettings()
        if let certificateChain, let privateKey {
            try context.loadIdentity(certificateChain: certificateChain, privateKey: privateKey)
        }
        if let acme {
            context.acme = acme
            AcmeTLSSelection.install(on: ctx, acme)
        }
        if let clientTrust {
            try context.requestClientCertificates(clientTrust)
        }
        SSL_CTX_set_alpn_select_cb(ctx, fastgwSelectALPN, Unmanaged.passUnretained(context).toOpaque())
        if let selector {
            _ = fastgw_SSL_CTX_set_tlsext_servername_callback(ctx, fastgwSelectCertificate)
            _ = fastgw_SSL_CTX_set_tlsext_servername_arg(ctx, Unmanaged.passUnretained(selector).toOpaque())
        }
        return context
    }

    /// A TLS-ALPN-01 validation context (RFC 8737): the self-signed certificate from PEM
    /// text, ALPN `acme-tls/1` only, and no switching by SNI.
    static func acmeValidation(certificatePEM: String, privateKeyPEM: String) throws(TLSError) -> TLSContext {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw .configuration("cannot create TLS context: \(TLSError.drainOpenSSLErrors())")
        }
        let context = TLSContext(ctx: ctx, alpn: [AcmeALPNOffer.protocolName])
        try context.applyCommonSettings()
        let loaded = certificatePEM.withCString { certText in
            privateKeyPEM.withCString { keyText in fastgw_SSL_CTX_use_pem_identity(ctx, certText, keyText) }
        }
        guard loaded == 1 else {
            throw .configuration("cannot load the tls-alpn-01 certificate: \(TLSError.drainOpenSSLErrors())")
        }
        SSL_CTX_set_alpn_select_cb(ctx, fastgwSelectALPN, Unmanaged.passUnretained(context).toOpaque())
        AcmeTLSSelection.pinServerName(ctx)
        return context
    }

    /// The certificate's expiry (seconds since the epoch); nil without a certificate.
    var certificateExpiry: Int? {
        let t = fastgw_SSL_CTX_certificate_not_after(ctx)
        return t > 0 ? Int(t) : nil
    }

    /// The DNS names (subjectAltName) of this context's certificate.
    var certificateDNSNames: [String] {
        let needed = fastgw_SSL_CTX_certificate_dns_names(ctx, nil, 0)
        guard needed > 0 else { return [] }
        var bytes = [CChar](repeating: 0, count: needed)
        _ = fastgw_SSL_CTX_certificate_dns_names(ctx, &bytes, needed)
        return String(decoding: bytes.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: "\n").map(String.init)
    }

    /// Client side: trust from `caFile` or the system store, optional client certificate.
    public static func client(
        caFile: String?, certificateChain: String? = nil, privateKey: String? = nil, alpn: [String]
    ) throws(TLSError) -> TLSContext {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw .configuration("cannot create TLS context: \(TLSError.drainOpenSSLErrors())")
        }
        let context = TLSContext(ctx: ctx, alpn: alpn)
        try context.applyCommonSettings()
        if let caFile {
            guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                throw .configuration("cannot load CA file \(caFile): \(TLSError.drainOpenSSLErrors())", file: caFile)
            }
        } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
            throw .configuration("cannot load the system trust store: \(TLSError.drainOpenSSLErrors())")
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        if let certificateChain, let privateKey {
            try context.loadIdentity(certificateChain: certificateChain, privateKey: privateKey)
        }
        return context
    }

    /// Loads the CAs (and CRLs) that client certificates are verified against, and asks
    /// clients for one without making it a handshake failure to send none or a bad one.
    private func requestClientCertificates(_ trust: ClientTrust) throws(TLSError) {
        guard SSL_CTX_load_verify_locations(ctx, trust.ca, nil) == 1 else {
            throw .configuration("cannot load client_ca \(trust.ca): \(TLSError.drainOpenSSLErrors())", file: trust.ca)
        }
        // The CA names tell an agent with several certificates which one to send.
        if let names = SSL_load_client_CA_file(trust.ca) {
            SSL_CTX_set_client_CA_list(ctx, names)
        }
        _ = TLSError.drainOpenSSLErrors()
        if let crl = trust.crl, fastgw_SSL_CTX_load_crl_file(ctx, crl) == 0 {
            throw .configuration("cannot load client_crl \(crl): \(TLSError.drainOpenSSLErrors()) (expected PEM CRLs, as openssl ca -gencrl writes them)", file: crl)
        }
        fastgw_SSL_CTX_request_client_certificate(ctx)
        requestsClientCertificate = true
    }

    private func applyCommonSettings() throws(TLSError) {
        guard fastgw_SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 else {
            throw .configuration("cannot require TLS 1.2: \(TLSError.drainOpenSSLErrors())")
        }
        // Memory BIOs never block, so partial writes cannot happen; moving buffers is safe
        // because a retried write always passes the same bytes.
        _ = fastgw_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER) | Int(SSL_MODE_RELEASE_BUFFERS))
        fastgw_SSL_CTX_harden(ctx)
        guard fastgw_SSL_CTX_prefer_fast_ciphers(ctx) == 1 else {
            throw .configuration("cannot set TLS 1.3 cipher suites: \(TLSError.drainOpenSSLErrors())")
        }
    }

    private func loadIdentity(certificateChain: String, privateKey: String) throws(TLSError) {
        guard SSL_CTX_use_certificate_chain_file(ctx, certificateChain) == 1 else {
            throw .configuration("cannot load certificate \(certificateChain): \(TLSError.drainOpenSSLErrors())", file: certificateChain)
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, privateKey, SSL_FILETYPE_PEM) == 1 else {
            let reason = TLSError.drainOpenSSLErrors()
            if reason.contains("key values mismatch") {
                throw .configuration("private key \(privateKey) does not match certificate \(certificateChain)", file: privateKey)
            }
            throw .configuration("cannot load private key \(privateKey): \(reason)", file: privateKey)
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw .configuration("private key \(privateKey) does not match certificate \(certificateChain)", file: privateKey)
        }
    }
}

/// SNI: a name one of the selector's certificates covers switches the handshake to it;
/// anything else (no SNI, an unknown name) keeps the default certificate.
private func fastgwSelectCertificate(_ ssl: OpaquePointer?, _ alert: UnsafeMutablePointer<Int32>?, _ arg: UnsafeMutableRawPointer?) -> Int32 {
    guard let ssl, let arg, let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return SSL_TLSEXT_ERR_OK }
    let selector = Unmanaged<CertificateSelector>.fromOpaque(arg).takeUnretainedValue()
    switch selector.choice(for: String(cString: name)) {
    case .context(let chosen): chosen.adopt(ssl)
    case .listenerDefault: break
    case .refuse:
        alert?.pointee = SSL_AD_UNRECOGNIZED_NAME
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }
    return SSL_TLSEXT_ERR_OK
}

/// ALPN selection for servers: the first of the server's protocols the client also offers.
/// No overlap means no ALPN at all (not a failure), as HTTP/1.1 clients often send none.
private func fastgwSelectALPN(
    _ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outlen: UnsafeMutablePointer<UInt8>?, _ input: UnsafePointer<UInt8>?, _ inlen: UInt32,
    _ arg: UnsafeMutableRawPointer?
) -> Int32 {
    guard let arg, let input, let out, let outlen else { return SSL_TLSEXT_ERR_NOACK }
    let context = Unmanaged<TLSContext>.fromOpaque(arg).takeUnretainedValue()
    let offered = UnsafeBufferPointer(start: input, count: Int(inlen))
    for wanted in context.alpn {
        let w = Array(wanted.utf8)
        var i = 0
        while i < offered.count {
            let len = Int(offered[i])
            let start = i + 1
            if start + len <= offered.count, len == w.count, Array(offered[start..<start + len]) == w {
                out.pointee = input.advanced(by: start)
                outlen.pointee = UInt8(len)
                return SSL_TLSEXT_ERR_OK
            }
            i = start + len
        }
    }
    return SSL_TLSEXT_ERR_NOACK
}
