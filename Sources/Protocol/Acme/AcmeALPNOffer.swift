/// TLS-ALPN-01 (RFC 8737 §3): a validation handshake offers exactly one ALPN protocol,
/// `acme-tls/1`. Reads the ClientHello's ALPN extension body and its server_name extension
/// body (as OpenSSL hands them to a ClientHello callback).
public enum AcmeALPNOffer {
    public static var protocolName: String { AcmeTLSALPN.protocolName }

    /// Whether the ALPN extension body offers `acme-tls/1` and nothing else.
    public static func onlyACME(alpnExtension body: [UInt8]) -> Bool {
        guard let list = protocols(body) else { return false }
        return list == [Array(protocolName.utf8)]
    }

    /// The protocol names in an ALPN extension body (RFC 7301 §3.1); nil when malformed.
    static func protocols(_ body: [UInt8]) -> [[UInt8]]? {
        guard body.count >= 2 else { return nil }
        let length = Int(body[0]) << 8 | Int(body[1])
        guard length == body.count - 2, length > 0 else { return nil }
        var out: [[UInt8]] = []
        var i = 2
        while i < body.count {
            let n = Int(body[i])
            guard n > 0, i + 1 + n <= body.count else { return nil }
            out.append(Array(body[(i + 1)...(i + n)]))
            i += 1 + n
        }
        return out
    }

    /// The host name in a server_name extension body (RFC 6066 §3), lowercased; nil when
    /// absent or malformed.
    public static func serverName(extension body: [UInt8]) -> String? {
        guard body.count >= 2 else { return nil }
        let length = Int(body[0]) << 8 | Int(body[1])
        guard length == body.count - 2 else { return nil }
        var i = 2
        while i + 3 <= body.count {
            let type = body[i]
            let n = Int(body[i + 1]) << 8 | Int(body[i + 2])
            guard i + 3 + n <= body.count else { return nil }
            if type == 0 {
                let name = body[(i + 3)..<(i + 3 + n)]
                guard !name.isEmpty, name.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
                return String(decoding: name, as: UTF8.self).lowercased()
            }
            i += 3 + n
        }
        return nil
    }
}
