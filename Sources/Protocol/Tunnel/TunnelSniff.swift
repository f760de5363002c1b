/// Tells an agent's tunnel request from a browser's request by the first bytes of an HTTP/1.1
/// connection on an HTTPS listener that also takes agents (`[[listener]] tunnel = true`).
/// Agents open with `GET /.fastgw/v1/tunnel HTTP/1.1` (either carrier); anything that
/// differs from that prefix at any byte is ordinary HTTP, so a decision needs at most
/// `prefix.count` bytes and a browser pays nothing but that comparison.
public enum TunnelSniff {
    public enum Verdict: Equatable, Sendable {
        case needMore
        case tunnel
        case http
    }

    /// The request line's start, through the space after the path (so `/.fastgw/v1/tunnelx`
    /// and `/.fastgw/v1/tunnel/x` stay ordinary requests).
    public static let prefix = Array("GET \(TunnelHandshake.path) ".utf8)

    public static func classify(_ bytes: some Collection<UInt8>) -> Verdict {
        var i = prefix.startIndex
        for byte in bytes {
            guard i < prefix.endIndex else { return .tunnel }
            if byte != prefix[i] { return .http }
            i += 1
        }
        return i == prefix.endIndex ? .tunnel : .needMore
    }
}
