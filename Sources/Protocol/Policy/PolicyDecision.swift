/// What a policy says about one request or connection. The daemon acts on it and nothing
/// else.
public enum PolicyDecision: Equatable, Sendable {
    case allow
    /// 403 (HTTP) or closed at accept (TCP): the address rules refuse the client.
    case deny(policy: String)
    /// 429 (HTTP) or closed at accept (TCP): a per-client limit is used up.
    case limit(policy: String, limit: Limited)
    /// 401 with a Basic challenge: no credentials, or credentials the htpasswd file refuses.
    case challenge(policy: String, realm: String)
    /// The forward-auth service's own refusal or redirect (401, 403, 3xx), passed to the client.
    case authAnswer(policy: String, status: Int, fields: [HeaderField], body: [UInt8])
    /// 502/503: the credentials could not be judged (forward auth down, slow or answering
    /// nonsense; password checks overloaded). Fails closed.
    case authUnavailable(policy: String, status: Int, reason: String)

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
        case .challenge: return "challenge"
        // A 403 from the auth service refuses; a 401 or a redirect to a sign-in asks.
        case .authAnswer(_, let status, _, _): return status == 403 ? "deny" : "challenge"
        case .authUnavailable: return "auth_error"
        }
    }

    /// The policy that decided, when one refused.
    public var policy: String? {
        switch self {
        case .allow: return nil
        case .deny(let p), .limit(let p, _), .challenge(let p, _), .authAnswer(let p, _, _, _), .authUnavailable(let p, _, _):
            return p
        }
    }
}
