/// HTTP Basic authentication (RFC 7617): the credentials a client sends in `Authorization`,
/// and the challenge the gateway answers a 401 with. Parsing is strict — one canonical
/// base64 token, UTF-8, no control characters — because the result is compared against
/// password hashes and anything lenient here is a second interpretation of the same bytes.
public struct BasicCredentials: Equatable, Sendable {
    public let user: String
    public let password: String

    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }

    /// Longest `Authorization` value looked at; real ones are tens of bytes.
    public static let maxFieldBytes = 4096

    /// The credentials in an `Authorization` field value, or nil when it is not a well-formed
    /// Basic value (another scheme, bad base64, no colon, empty user, control characters).
    public static func parse(_ value: String) -> BasicCredentials? {
        let bytes = Array(value.utf8)
        guard bytes.count <= maxFieldBytes, bytes.count > 6 else { return nil }
        // The scheme is case-insensitive (RFC 9110 §11.1); one or more spaces follow it.
        guard String(decoding: bytes[0..<5], as: UTF8.self).equalsIgnoringASCIICase("basic"), bytes[5] == 32 else { return nil }
        var start = 6
        while start < bytes.count && bytes[start] == 32 { start += 1 }
        guard let decoded = base64Decode(bytes[start...]),
              let colon = decoded.firstIndex(of: UInt8(ascii: ":")), colon > decoded.startIndex,
              !decoded.contains(where: { $0 < 0x20 || $0 == 0x7f }),
              let user = String(validating: decoded[..<colon], as: UTF8.self),
              let password = String(validating: decoded[(colon + 1)...], as: UTF8.self) else { return nil }
        return BasicCredentials(user: user, password: password)
    }

    /// `Basic realm="…", charset="UTF-8"`; the realm is quoted (RFC 9110 §5.6.4) with `"` and
    /// `\` escaped and control characters left out, so no realm can end the field early.
    public static func challenge(realm: String) -> String {
        var quoted = ""
        for scalar in realm.unicodeScalars where scalar.value >= 0x20 && scalar.value != 0x7f {
            if scalar == "\"" || scalar == "\\" { quoted.append("\\") }
            quoted.unicodeScalars.append(scalar)
        }
        return "Basic realm=\"\(quoted)\", charset=\"UTF-8\""
    }

    /// Why `realm` cannot be configured, or nil: printable, at most 128 bytes, so the
    /// browser's prompt shows what the operator wrote.
    public static func realmProblem(_ realm: String) -> String? {
        if realm.isEmpty { return "realm must not be empty" }
        if realm.utf8.count > 128 { return "realm is longer than 128 bytes" }
        if realm.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            return "realm must not contain control characters"
        }
        return nil
    }

    /// RFC 4648 base64 with padding, canonical only: length a multiple of four, `=` only at
    /// the end, and unused bits zero (so one credential has exactly one spelling).
    static func base64Decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        guard !text.isEmpty, text.count % 4 == 0 else { return nil }
        var padding = 0
        if text.last == UInt8(ascii: "=") { padding += 1 }
        if text.dropLast().last == UInt8(ascii: "=") { padding += 1 }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 4 * 3)
        var accumulator: UInt32 = 0
        var bits = 0
        for c in text.dropLast(padding) {
            guard let v = sextet(c) else { return nil }
            accumulator = accumulator << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        guard accumulator == 0 else { return nil }
        return out
    }

    private static func sextet(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return nil
        }
    }
}
