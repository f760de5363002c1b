/// Fields that tell an upstream who the client is and how it came in. Public clients are not
/// trusted to say it (DESIGN §9): whatever they sent under these names is dropped before the
/// request enters the tunnel, and the gateway writes its own X-Forwarded-For/-Proto/-Host
/// and an RFC 7239 `Forwarded`. A peer in `[gateway] trusted_proxies` is a proxy that speaks
/// for its clients: its X-Forwarded-For and Forwarded are kept and appended to, and the
/// request's client is the right-most address in them that is not a trusted proxy
/// (`ForwardedFields+Trust.swift`).
public enum ForwardedFields {
    /// Lowercased names of client fields the gateway never forwards: every `x-forwarded-*`
    /// (For, Proto, Host, Port, Prefix, …), `forwarded` (RFC 7239), `x-real-ip`, and the
    /// request id fields, which belong to the gateway and the agent.
    public static func isClientClaim(_ lowercasedName: String) -> Bool {
        lowercasedName.hasPrefix("x-forwarded-") || lowercasedName == "forwarded" || lowercasedName == "x-real-ip"
            || lowercasedName == "x-request-id" || lowercasedName == clientRequestIDName
    }

    /// Where a request id the client sent travels instead of `X-Request-Id`, so an upstream
    /// can still correlate with the client's logs without mistaking it for fastgw's.
    public static let clientRequestIDName = "x-client-request-id"

    /// Longest client request id passed on; longer ones are cut.
    public static let clientRequestIDLimit = 128

    /// The client's request id as it may travel: cut to the limit, every byte other than
    /// letters, digits and `-._~:+/=@` replaced by `_`; nil when empty.
    public static func clientRequestID(_ value: String) -> String? {
        let kept = value.utf8.prefix(clientRequestIDLimit).map { isIDByte($0) ? $0 : UInt8(ascii: "_") }
        return kept.isEmpty ? nil : String(decoding: kept, as: UTF8.self)
    }

    private static func isIDByte(_ b: UInt8) -> Bool {
        if PathNormalizer.isUnreserved(b) { return true }
        switch b {
        case UInt8(ascii: ":"), UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="), UInt8(ascii: "@"): return true
        default: return false
        }
    }
}
