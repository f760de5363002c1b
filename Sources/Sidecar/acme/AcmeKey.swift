import COpenSSL
import Glibc
import Protocol

/// A P-256 private key (OpenSSL EVP_PKEY) for the ACME account or a certificate: generated
/// here, kept as PEM (PKCS#8) in a 0600 file written atomically, so a crash never leaves half
/// a key behind and no other user can read it.
final class AcmeKey: @unchecked Sendable {
    // Immutable after init; OpenSSL allows concurrent use of one EVP_PKEY for signing.
    let pkey: OpaquePointer

    private init(pkey: OpaquePointer) {
        self.pkey = pkey
    }

    deinit {
        EVP_PKEY_free(pkey)
    }

    static func generate() throws(AcmeError) -> AcmeKey {
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else { throw .openSSL("cannot create a key context") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_CTX_set_group_name(ctx, "P-256") == 1,
              EVP_PKEY_generate(ctx, &key) == 1, let key else {
            throw .openSSL("cannot generate a P-256 key")
        }
        return AcmeKey(pkey: key)
    }

    static func load(pemFile: String) throws(AcmeError) -> AcmeKey {
        guard let bio = BIO_new_file(pemFile, "r") else { throw .openSSL("cannot open key file \(pemFile)") }
        defer { BIO_free(bio) }
        guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
            throw .openSSL("cannot read a private key from \(pemFile)")
        }
        let loaded = AcmeKey(pkey: key)
        guard loaded.isP256 else { throw AcmeError("\(pemFile) is not a P-256 (prime256v1) EC key") }
        return loaded
    }

    init(pem: String) throws(AcmeError) {
        let bytes = Array(pem.utf8)
        guard let bio = bytes.withUnsafeBytes({ BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }) else {
            throw .openSSL("cannot read a PEM key")
        }
        defer { BIO_free(bio) }
        guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else { throw .openSSL("cannot read a PEM private key") }
        pkey = key
        guard isP256 else { throw AcmeError("the key is not a P-256 (prime256v1) EC key") }
    }

    private var isP256: Bool {
        guard EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC else { return false }
        var name = [CChar](repeating: 0, count: 64)
        var length = 0
        guard EVP_PKEY_get_utf8_string_param(pkey, "group", &name, name.count, &length) == 1 else { return false }
        return String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self) == "prime256v1"
    }

    /// Writes the PEM 0600, atomically (`AcmeStateFiles.write`). A key OpenSSL cannot encode
    /// is an error, never an empty file.
    func save(pemFile: String) throws(AcmeError) {
        let text = pem
        guard !text.isEmpty else { throw .openSSL("cannot encode the private key as PEM") }
        try AcmeStateFiles.write(text, to: pemFile)
    }

    /// PKCS#8 PEM of the private key.
    var pem: String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, pkey, nil, nil, 0, nil, nil) == 1 else { return "" }
        return Self.drain(bio)
    }

    /// The public point's coordinates, 32 bytes each (for the JWK).
    var publicCoordinates: (x: [UInt8], y: [UInt8]) {
        var point = [UInt8](repeating: 0, count: 65)
        var length = 0
        // OpenSSL encodes EC public keys uncompressed by default: 0x04 || x || y.
        guard EVP_PKEY_get_octet_string_param(pkey, "encoded-pub-key", &point, point.count, &length) == 1,
              length == 65, point[0] == 4 else { return ([], []) }
        return (Array(point[1..<33]), Array(point[33..<65]))
    }

    /// ECDSA-SHA256 signature of `message`, DER-encoded as OpenSSL makes it.
    func signDER(_ message: [UInt8]) throws(AcmeError) -> [UInt8] {
        guard let md = EVP_MD_CTX_new() else { throw .openSSL("cannot create a digest context") }
        defer { EVP_MD_CTX_free(md) }
        guard EVP_DigestSignInit(md, nil, EVP_sha256(), nil, pkey) == 1 else { throw .openSSL("cannot start signing") }
        var length = 0
        guard message.withUnsafeBufferPointer({ EVP_DigestSign(md, nil, &length, $0.baseAddress, $0.count) }) == 1 else {
            throw .openSSL("cannot size the signature")
        }
        var signature = [UInt8](repeating: 0, count: length)
        guard message.withUnsafeBufferPointer({ EVP_DigestSign(md, &signature, &length, $0.baseAddress, $0.count) }) == 1 else {
            throw .openSSL("cannot sign")
        }
        return Array(signature.prefix(length))
    }

    static func drain(_ bio: OpaquePointer) -> String {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = BIO_read(bio, &chunk, Int32(chunk.count))
            if n <= 0 { break }
            out += chunk.prefix(Int(n))
        }
        return String(decoding: out, as: UTF8.self)
    }
}
