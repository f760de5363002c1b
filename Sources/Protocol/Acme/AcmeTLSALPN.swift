/// RFC 8737 pieces that need no crypto library.
public enum AcmeTLSALPN {
    /// The ALPN protocol a validation handshake offers, and only it.
    public static let protocolName = "acme-tls/1"
    /// id-pe-acmeIdentifier.
    public static let extensionOID = "1.3.6.1.5.5.7.1.31"

    /// The extension's value: the DER OCTET STRING holding SHA-256 of the key authorization.
    public static func acmeIdentifierValue(keyAuthorization: String) -> [UInt8] {
        [0x04, 0x20] + SHA256.hash(Array(keyAuthorization.utf8))
    }
}
