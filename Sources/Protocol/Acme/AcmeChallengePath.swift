/// HTTP-01 (RFC 8555 §8.3): the token a request for `/.well-known/acme-challenge/<token>`
/// asks for. Tokens are base64url (§8.1), so anything else in that place (`..`, `%2F`, a
/// query, a second segment) is not a challenge request.
public enum AcmeChallengePath {
    public static let prefix = "/.well-known/acme-challenge/"
    /// Tokens carry at least 128 bits of entropy (22 characters); real ones are 43. Longer
    /// than this is not a token any CA issues.
    public static let maximumTokenLength = 128

    public static func token(inPath path: String) -> String? {
        guard path.hasPrefix(prefix) else { return nil }
        let token = path.utf8.dropFirst(prefix.utf8.count)
        guard !token.isEmpty, token.count <= maximumTokenLength else { return nil }
        let base64url = token.allSatisfy { c in
            (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x5F
        }
        return base64url ? String(decoding: token, as: UTF8.self) : nil
    }
}
