import COpenSSL
import Protocol

/// What an https listener's handshake consults for ACME: the TLS-ALPN-01 validation
/// certificates (RFC 8737) and the certificates already obtained. Kept alive by the listener's
/// `TLSContext` for the C callback that receives it unretained.
final class AcmeTLSSelection: Sendable {
    let board: AcmeChallengeBoard
    let store: AcmeCertificateStore

    init(board: AcmeChallengeBoard, store: AcmeCertificateStore) {
        self.board = board
        self.store = store
    }

    /// The ClientHello callback runs before SNI and ALPN are processed: a handshake that offers
    /// only `acme-tls/1` for a host whose challenge is pending switches to the validation
    /// certificate, whose context selects `acme-tls/1` (HTTPSNegotiation then closes it).
    /// Any other handshake, `acme-tls/1` for a host with nothing pending included, goes on as
    /// usual (and finds no common ALPN protocol).
    static func install(on ctx: OpaquePointer, _ selection: AcmeTLSSelection) {
        SSL_CTX_set_client_hello_cb(ctx, fastgwAcmeClientHello, Unmanaged.passUnretained(selection).toOpaque())
    }

    /// A validation context: it must not switch away again when SNI is processed.
    static func pinServerName(_ ctx: OpaquePointer) {
        _ = fastgw_SSL_CTX_set_tlsext_servername_callback(ctx, fastgwKeepContext)
    }
}

private func fastgwKeepContext(_ ssl: OpaquePointer?, _ alert: UnsafeMutablePointer<Int32>?, _ arg: UnsafeMutableRawPointer?) -> Int32 {
    SSL_TLSEXT_ERR_OK
}

private func extensionBytes(_ ssl: OpaquePointer, _ type: Int32) -> [UInt8]? {
    var data: UnsafePointer<UInt8>?
    var length = 0
    guard SSL_client_hello_get0_ext(ssl, UInt32(type), &data, &length) == 1, let data else { return nil }
    return Array(UnsafeBufferPointer(start: data, count: length))
}

private func fastgwAcmeClientHello(_ ssl: OpaquePointer?, _ alert: UnsafeMutablePointer<Int32>?, _ arg: UnsafeMutableRawPointer?) -> Int32 {
    guard let ssl, let arg,
        let alpn = extensionBytes(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation),
        AcmeALPNOffer.onlyACME(alpnExtension: alpn),
        let sni = extensionBytes(ssl, TLSEXT_TYPE_server_name),
        let host = AcmeALPNOffer.serverName(extension: sni)
    else { return SSL_CLIENT_HELLO_SUCCESS }
    let selection = Unmanaged<AcmeTLSSelection>.fromOpaque(arg).takeUnretainedValue()
    if let challenge = selection.board.tlsALPN01(host: host) {
        challenge.adopt(ssl)
    }
    return SSL_CLIENT_HELLO_SUCCESS
}
