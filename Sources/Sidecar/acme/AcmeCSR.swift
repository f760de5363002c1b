import COpenSSL
import Protocol

/// The certificate signing request sent at finalize (RFC 8555 §7.4): the certificate key's
/// public half, every host as a subjectAltName dNSName, signed by that key.
enum AcmeCSR {
    /// DER of the CSR. The hosts must already be checked DNS names (the SAN text is built from them).
    static func der(hosts: [String], key: AcmeKey) throws(AcmeError) -> [UInt8] {
        guard !hosts.isEmpty, hosts.allSatisfy({ AcmeHostName.isValid($0) }) else {
            throw AcmeError("a CSR needs one or more DNS names, got \(hosts)")
        }
        guard let request = X509_REQ_new() else { throw .openSSL("cannot create a CSR") }
        defer { X509_REQ_free(request) }
        guard X509_REQ_set_version(request, 0) == 1, X509_REQ_set_pubkey(request, key.pkey) == 1 else {
            throw .openSSL("cannot set the CSR key")
        }
        // The subject CN is optional for ACME; the first host keeps older tools' displays useful.
        if let name = X509_REQ_get_subject_name(request), hosts[0].utf8.count <= 64 {
            _ = X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC, hosts[0], -1, -1, 0)
        }
        let san = hosts.map { "DNS:" + $0 }.joined(separator: ",")
        guard let ext = X509V3_EXT_conf_nid(nil, nil, NID_subject_alt_name, san) else { throw .openSSL("cannot build subjectAltName") }
        defer { X509_EXTENSION_free(ext) }
        guard let stack = OPENSSL_sk_new_null() else { throw .openSSL("cannot build the CSR extensions") }
        defer { OPENSSL_sk_free(stack) }
        guard OPENSSL_sk_push(stack, UnsafeRawPointer(ext)) > 0, X509_REQ_add_extensions(request, stack) == 1 else {
            throw .openSSL("cannot add subjectAltName to the CSR")
        }
        guard X509_REQ_sign(request, key.pkey, EVP_sha256()) > 0 else { throw .openSSL("cannot sign the CSR") }
        var out: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509_REQ(request, &out)
        guard length > 0, let out else { throw .openSSL("cannot encode the CSR") }
        defer { CRYPTO_free(out, #fileID, #line) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }
}
