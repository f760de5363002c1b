/// What a policy says about one request or connection. The daemon acts on it and nothing
/// else; new answers (a 401 challenge, asking a forward-auth service) become new cases.
public enum PolicyDecision: Equatable, Sendable {
    case allow
    /// 403 (HTTP) or closed at accept (TCP): the address rules refuse the client.
    case deny(policy: String)
    /// 429 (HTTP) or closed at accept (TCP): a per-client limit is used up.
    case limit(policy: String, limit: Limited)

    public struct Limited: Equatable, Sendable {
        public enum Kind: String, Sendable {
            case requests, connections
            /// `max_connections_per_client`: no time will do, only a closed connection.
            case openConnections = "open_connections"
        }
        public var kind: Kind
        /// `Retry-After` seconds.
        public var retryAfter: Int
        /// The configured limit (events a second, or open connections) for `RateLimit-Policy`.
        public var quota: Int

        /// The fields of draft-ietf-httpapi-ratelimit-headers (RateLimit-Policy, RateLimit) for
        /// a refused request: quota `q` per window `w` seconds, nothing remaining (`r=0`),
        /// and `t` seconds until more is allowed. The policy's name is the item.
        public func headerFields(policy: String) -> [(String, String)] {
            let item = "\"\(policy.filter { $0 != "\"" && $0 != "\\" })\""
            return [
                ("RateLimit-Policy", "\(item);q=\(quota);w=1"),
                ("RateLimit", "\(item);r=0;t=\(retryAfter)"),
            ]
        }
    }

    /// For counters, logs and the access record.
    public var label: String {
        switch self {
        case .allow: return "allow"
        case .deny: return "deny"
        case .limit: return "limit"
        }
    }

    /// The policy that decided, when one refused.
    public var policy: String? {
        switch self {
        case .allow: return nil
        case .deny(let p), .limit(let p, _): return p
        }
    }
}
