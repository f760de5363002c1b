import COpenSSL

/// OpenSSL hands a context's callbacks (ALPN selection) an unretained pointer to the Swift
/// `TLSContext`, and does so after a handshake switched to that context (SNI, TLS-ALPN-01),
/// when whoever chose it (the ACME store, the challenge board) may already have dropped it.
/// The switched-to context is therefore retained in this slot of the handshake's `SSL` and
/// released when the `SSL` is freed: it lives exactly as long as the handshake can reach it.
private let switchedContextSlot: Int32 = CRYPTO_get_ex_new_index(
    CRYPTO_EX_INDEX_SSL, 0, nil, nil, nil,
    { _, pointer, _, _, _, _ in
        if let pointer { Unmanaged<TLSContext>.fromOpaque(pointer).release() }
    })

extension TLSContext {
    /// Moves the handshake on `ssl` to this context and keeps this context alive as long as
    /// `ssl` (replacing, and releasing, a context an earlier callback switched to).
    func adopt(_ ssl: OpaquePointer) {
        let slot = switchedContextSlot
        let previous = SSL_get_ex_data(ssl, slot)
        SSL_set_ex_data(ssl, slot, Unmanaged.passRetained(self).toOpaque())
        if let previous { Unmanaged<TLSContext>.fromOpaque(previous).release() }
        SSL_set_SSL_CTX(ssl, ctx)
    }
}
