/// Which names fastgw orders certificates for: exact DNS names (RFC 1123 labels, at least two
/// of them, no wildcard: those need DNS-01) — also what keeps a name from smuggling text into
/// the OpenSSL extension syntax the CSR is built with.
public enum AcmeHostName {
    public static func isValid(_ host: String) -> Bool {
        let bytes = Array(host.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        for label in labels {
            guard !label.isEmpty, label.count <= 63, label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-"),
                  label.allSatisfy({ isLetterOrDigit($0) || $0 == UInt8(ascii: "-") }) else { return false }
        }
        // An all-numeric last label would make it an IPv4 address, which needs other validation.
        return !labels.last!.allSatisfy { $0 >= 48 && $0 <= 57 }
    }

    private static func isLetterOrDigit(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z"))
    }
}
