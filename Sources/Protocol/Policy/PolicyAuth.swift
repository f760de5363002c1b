/// `[[policy]] basic_auth`: who may pass, from an htpasswd file, and the realm a browser shows.
public struct BasicAuthRule: Equatable, Sendable {
    /// The resolved path (or `credential:NAME` when `fastgw check` could not look it up).
    public var path: String
    public var realm: String
    /// The file's entries; nil only when the file was not read (a credential `fastgw check`
    /// skips). The daemons never run with nil: their loads refuse unreadable files.
    public var users: Htpasswd?

    public static let defaultRealm = "fastgw"

    public init(path: String, realm: String = BasicAuthRule.defaultRealm, users: Htpasswd?) {
        self.path = path
        self.realm = realm
        self.users = users
    }
}

/// `[[policy]] forward_auth`: the service asked about each request, the fields of its
/// allowing answer that go to the upstream, and how long it may take.
public struct ForwardAuthRule: Equatable, Sendable {
    public var target: ForwardAuthTarget
    /// Response field names (as configured) copied into the upstream request on a 2xx. The
    /// client's own fields of these names are always removed, answer or not, so a client
    /// cannot pose as a user the service did not name.
    public var copy: [String]
    public var timeout: Duration

    public static let defaultTimeout = Duration.seconds(5)
    public static let maxCopiedFields = 32

    public init(target: ForwardAuthTarget, copy: [String] = [], timeout: Duration = ForwardAuthRule.defaultTimeout) {
        self.target = target
        self.copy = copy
        self.timeout = timeout
    }

    /// Why `name` cannot be in `forward_auth_headers`, or nil: a field token that is not
    /// about the connection or the message's framing, and not one the gateway itself sets
    /// for the upstream (`fastgw-*`, `X-Forwarded-*`, `Forwarded`, `X-Real-IP`).
    public static func copyProblem(_ name: String) -> String? {
        guard !name.isEmpty, name.allSatisfy({ HTTPHeadParser.isTokenChar($0) }) else {
            return "\"\(name)\" is not a header field name"
        }
        let lower = name.asciiLowercased()
        if HopByHop.names.contains(lower) || ["host", "content-length", "trailer", "expect", "te"].contains(lower) {
            return "\(name) describes the connection or the message framing and cannot be copied"
        }
        if HopByHop.isInternal(lower) || ForwardedFields.isClientClaim(lower) {
            return "\(name) is set by the gateway itself and cannot be copied"
        }
        return nil
    }
}

/// What an authenticating policy needs to know of a request before it can pass: nothing
/// (no authentication), a 401 challenge at once, credentials to verify, or a forward-auth
/// service to ask. The daemon does the verifying and asking (off the event loop, over the
/// network); this only reads the request.
public enum AuthStep: Equatable, Sendable {
    case none
    /// 401 with `WWW-Authenticate: Basic realm=…`: no usable Basic credentials.
    case challenge(realm: String)
    case verify(BasicCredentials, Htpasswd)
    case ask(ForwardAuthRule)
}

extension AccessPolicy {
    /// Whether the policy authenticates requests (then TCP connections cannot be served
    /// through it: they carry no credentials).
    public var authenticates: Bool { basicAuth != nil || forwardAuth != nil }

    /// The step for a request whose `Authorization` fields are `authorization`. Exactly one
    /// well-formed Basic value is verified; none, several, or a malformed one is challenged
    /// (two values could be read as two different users by two different parsers).
    public func authStep(authorization: [String]) -> AuthStep {
        if let rule = basicAuth {
            guard authorization.count == 1, let credentials = BasicCredentials.parse(authorization[0]),
                  let users = rule.users else { return .challenge(realm: rule.realm) }
            return .verify(credentials, users)
        }
        if let rule = forwardAuth { return .ask(rule) }
        return .none
    }
}
