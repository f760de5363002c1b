import COpenSSL
import Glibc
import Protocol

/// Facts about a PEM chain's leaf, read with OpenSSL: for reusing a stored certificate at
/// start and for reporting what was issued.
enum AcmeCertificateInfo {
    static func read(chainPEM: String) -> (notBefore: Int, notAfter: Int, issuer: String, dnsNames: [String])? {
        guard let leaf = firstCertificate(chainPEM) else { return nil }
        defer { X509_free(leaf) }
        guard let notBefore = epochSeconds(X509_get0_notBefore(leaf)),
              let notAfter = epochSeconds(X509_get0_notAfter(leaf)) else { return nil }
        return (notBefore, notAfter, issuerName(leaf), dnsNames(leaf))
    }

    /// The first certificate of a PEM text; the caller frees it.
    static func firstCertificate(_ pem: String) -> OpaquePointer? {
        let bytes = Array(pem.utf8)
        guard let bio = bytes.withUnsafeBytes({ BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }) else { return nil }
        defer { BIO_free(bio) }
        return PEM_read_bio_X509(bio, nil, nil, nil)
    }

    private static func epochSeconds(_ time: UnsafePointer<ASN1_TIME>?) -> Int? {
        guard let time else { return nil }
        var tm = Glibc.tm()
        guard ASN1_TIME_to_tm(time, &tm) == 1 else { return nil }
        return Int(timegm(&tm))
    }

    /// Issuer CN, else O, else the whole name in one line.
    private static func issuerName(_ cert: OpaquePointer) -> String {
        guard let name = X509_get_issuer_name(cert) else { return "" }
        for nid in [NID_commonName, NID_organizationName] {
            let index = X509_NAME_get_index_by_NID(name, nid, -1)
            guard index >= 0, let entry = X509_NAME_get_entry(name, index),
                  let data = X509_NAME_ENTRY_get_data(entry) else { continue }
            return asn1Text(data)
        }
        var buffer = [CChar](repeating: 0, count: 256)
        X509_NAME_oneline(name, &buffer, Int32(buffer.count))
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func dnsNames(_ cert: OpaquePointer) -> [String] {
        guard let raw = X509_get_ext_d2i(cert, NID_subject_alt_name, nil, nil) else { return [] }
        let names = OpaquePointer(raw)
        defer { GENERAL_NAMES_free(names) }
        var out: [String] = []
        for i in 0..<OPENSSL_sk_num(names) {
            guard let name = OPENSSL_sk_value(names, i) else { continue }
            var type: Int32 = 0
            guard let value = GENERAL_NAME_get0_value(name.assumingMemoryBound(to: GENERAL_NAME.self), &type),
                  type == GEN_DNS else { continue }
            out.append(asn1Text(value.assumingMemoryBound(to: ASN1_STRING.self)))
        }
        return out
    }

    static func asn1Text(_ string: UnsafePointer<ASN1_STRING>) -> String {
        guard let data = ASN1_STRING_get0_data(string) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(string))), as: UTF8.self)
    }
}

extension AcmeCertificateInfo {
    /// The leaf's ARI certificate identifier (RFC 9773 §4.1); nil without an Authority Key
    /// Identifier with a keyIdentifier.
    static func ariCertID(chainPEM: String) -> String? {
        guard let leaf = firstCertificate(chainPEM) else { return nil }
        defer { X509_free(leaf) }
        guard let aki = X509_get0_authority_key_id(leaf), let serial = X509_get0_serialNumber(leaf) else { return nil }
        let keyIdentifier = asn1Bytes(aki)
        guard !keyIdentifier.isEmpty else { return nil }
        return AcmeARI.certID(authorityKeyIdentifier: keyIdentifier, serial: asn1Bytes(serial))
    }

    static func asn1Bytes(_ string: UnsafePointer<ASN1_STRING>) -> [UInt8] {
        guard let data = ASN1_STRING_get0_data(string) else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(string))))
    }
}
