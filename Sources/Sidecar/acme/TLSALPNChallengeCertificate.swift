import COpenSSL
import Protocol

/// The self-signed certificate a TLS-ALPN-01 validation handshake must see (RFC 8737 §3):
/// subjectAltName = the host alone, and the critical acmeIdentifier extension holding
/// SHA-256 of the key authorization. A fresh P-256 key each time; it lives a week at most.
enum TLSALPNChallengeCertificate {
    static func make(host: String, keyAuthorization: String) throws(AcmeError) -> (certificatePEM: String, privateKeyPEM: String) {
        guard AcmeHostName.isValid(host) else { throw AcmeError("not a DNS name for TLS-ALPN-01: \(host)") }
        let key = try AcmeKey.generate()
        guard let cert = X509_new() else { throw .openSSL("cannot create a certificate") }
        defer { X509_free(cert) }
        var serial = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&serial, Int32(serial.count)) == 1 else { throw .openSSL("no random serial") }
        serial[0] &= 0x7f
        guard X509_set_version(cert, 2) == 1,
              let serialNumber = BN_bin2bn(serial, Int32(serial.count), nil) else { throw .openSSL("cannot set the serial") }
        defer { BN_free(serialNumber) }
        guard BN_to_ASN1_INTEGER(serialNumber, X509_get_serialNumber(cert)) != nil,
              X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != nil,
              X509_gmtime_adj(X509_getm_notAfter(cert), 7 * 86400) != nil,
              X509_set_pubkey(cert, key.pkey) == 1,
              let name = X509_get_subject_name(cert),
              X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC, host, -1, -1, 0) == 1,
              X509_set_issuer_name(cert, name) == 1 else {
            throw .openSSL("cannot fill in the challenge certificate")
        }
        guard let san = X509V3_EXT_conf_nid(nil, nil, NID_subject_alt_name, "DNS:" + host) else {
            throw .openSSL("cannot build subjectAltName")
        }
        defer { X509_EXTENSION_free(san) }
        guard X509_add_ext(cert, san, -1) == 1 else { throw .openSSL("cannot add subjectAltName") }
        try addAcmeIdentifier(cert, AcmeTLSALPN.acmeIdentifierValue(keyAuthorization: keyAuthorization))
        guard X509_sign(cert, key.pkey, EVP_sha256()) > 0 else { throw .openSSL("cannot sign the challenge certificate") }
        guard let bio = BIO_new(BIO_s_mem()) else { throw .openSSL("cannot encode the challenge certificate") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_X509(bio, cert) == 1 else { throw .openSSL("cannot encode the challenge certificate") }
        let keyPEM = key.pem
        guard !keyPEM.isEmpty else { throw .openSSL("cannot encode the challenge certificate's key") }
        return (AcmeKey.drain(bio), keyPEM)
    }

    private static func addAcmeIdentifier(_ cert: OpaquePointer, _ value: [UInt8]) throws(AcmeError) {
        guard let oid = OBJ_txt2obj(AcmeTLSALPN.extensionOID, 1) else { throw .openSSL("cannot make the acmeIdentifier OID") }
        defer { ASN1_OBJECT_free(oid) }
        guard let octets = ASN1_OCTET_STRING_new() else { throw .openSSL("cannot make the acmeIdentifier value") }
        defer { ASN1_OCTET_STRING_free(octets) }
        guard ASN1_OCTET_STRING_set(octets, value, Int32(value.count)) == 1,
              let ext = X509_EXTENSION_create_by_OBJ(nil, oid, 1, octets) else {
            throw .openSSL("cannot make the acmeIdentifier extension")
        }
        defer { X509_EXTENSION_free(ext) }
        guard X509_add_ext(cert, ext, -1) == 1 else { throw .openSSL("cannot add the acmeIdentifier extension") }
    }
}
