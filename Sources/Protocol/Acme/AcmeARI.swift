/// ACME Renewal Information (RFC 9773): the certificate identifier and the suggested window.
public enum AcmeARI {
    /// base64url(AKI keyIdentifier) "." base64url(DER serial number contents). `serial` is the
    /// serial's magnitude (as OpenSSL gives it); DER needs a 0x00 in front when its high bit is set.
    public static func certID(authorityKeyIdentifier: [UInt8], serial: [UInt8]) -> String {
        var magnitude = serial[...]
        while magnitude.count > 1, magnitude.first == 0 { magnitude = magnitude.dropFirst() }
        let der = (magnitude.first ?? 0) & 0x80 != 0 ? [0] + magnitude : Array(magnitude)
        return Base64URL.encode(authorityKeyIdentifier) + "." + Base64URL.encode(der)
    }

    /// The suggestedWindow of a renewalInfo answer; nil unless start <= end.
    public static func suggestedWindow(_ json: JSON) -> (start: Int, end: Int)? {
        guard let window = json["suggestedWindow"], let start = window["start"]?.string.flatMap(HTTPDate.parseRFC3339),
              let end = window["end"]?.string.flatMap(HTTPDate.parseRFC3339), start <= end else { return nil }
        return (start, end)
    }
}
