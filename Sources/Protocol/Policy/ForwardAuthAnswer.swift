/// What the gateway does with a request after asking a forward-auth service (nginx
/// `auth_request`, Traefik ForwardAuth): let it through with some of the service's header
/// fields added, answer the client with the service's own refusal or redirect, or fail
/// closed because the service could not give a usable answer.
public enum ForwardAuthAnswer: Equatable, Sendable {
    /// 2xx: forward the request; `upstreamFields` are the configured response fields to add
    /// to it (replacing any the client sent under the same names).
    case allow(upstreamFields: [HeaderField])
    /// 401, 403 or a redirect: the client gets this status, these fields and this body.
    case respond(status: Int, fields: [HeaderField], body: [UInt8])
    /// 502 (the service answered something unusable) or 503 (down or too slow).
    case fail(status: Int, reason: String)

    /// Response fields passed to the client with a refusal or redirect: what a sign-in flow
    /// needs (oauth2-proxy's redirect sets a CSRF cookie) and nothing that frames the message.
    public static let clientFields = ["WWW-Authenticate", "Location", "Content-Type", "Set-Cookie", "Cache-Control"]

    /// Decides on a complete head; `body` is only looked at for refusals and redirects.
    public static func decide(status: Int, head: HTTPHead, body: [UInt8], copy: [String]) -> ForwardAuthAnswer {
        switch status {
        case 200..<300:
            var fields: [HeaderField] = []
            for name in copy {
                for value in head.values(name) { fields.append(HeaderField(name, value)) }
            }
            return .allow(upstreamFields: fields)
        case 401, 403, 301, 302, 303, 307, 308:
            if (300..<400).contains(status) && head["Location"] == nil {
                return .fail(status: 502, reason: "forward auth answered \(status) without Location")
            }
            var fields: [HeaderField] = []
            for name in clientFields {
                for value in head.values(name) { fields.append(HeaderField(name, value)) }
            }
            return .respond(status: status, fields: fields, body: body)
        default:
            return .fail(status: 502, reason: "forward auth answered \(status)")
        }
    }

    /// Whether the answer needs the response body (refusals and redirects carry it to the client).
    static func needsBody(_ status: Int) -> Bool {
        status == 401 || status == 403 || (300..<400).contains(status)
    }
}

/// The `forward_auth` address: plain `http://host:port/path` (no TLS to the auth service
/// yet; it is expected on loopback or a private network).
public struct ForwardAuthTarget: Equatable, Sendable {
    public let host: String
    public let port: Int
    /// Path and query sent in the request line, `/` at least.
    public let path: String

    public static func parse(_ url: String) -> Result<ForwardAuthTarget, Invalid> {
        guard url.hasPrefix("http://") else {
            return .failure(Invalid(url.hasPrefix("https://") ? "https forward_auth is not supported yet; use http:// on a private address"
                : "forward_auth must be an http://host:port/path URL"))
        }
        let rest = url.dropFirst(7)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        guard !path.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7f || $0 == UInt8(ascii: "#") }) else {
            return .failure(Invalid("forward_auth path must be printable ASCII without spaces or a fragment"))
        }
        guard !authority.contains("@") else { return .failure(Invalid("forward_auth must not carry user info")) }
        let host: Substring, portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return .failure(Invalid("forward_auth has an unclosed [IPv6] host")) }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":") else { return .failure(Invalid("forward_auth has junk after the [IPv6] host")) }
            portText = after.isEmpty ? nil : after.dropFirst()
            guard IPAddress(String(host)) != nil else { return .failure(Invalid("forward_auth has an invalid IPv6 address")) }
        } else {
            let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            host = parts[0]
            portText = parts.count == 2 ? parts[1] : nil
            guard !host.isEmpty, host.utf8.allSatisfy({ HTTPHeadParser.isTokenByte($0) && $0 != UInt8(ascii: "%") }) else {
                return .failure(Invalid("forward_auth has an invalid host"))
            }
        }
        var port = 80
        if let portText {
            guard let p = Int(portText), String(p) == portText, (1...65535).contains(p) else {
                return .failure(Invalid("forward_auth has an invalid port"))
            }
            port = p
        }
        return .success(ForwardAuthTarget(host: String(host), port: port, path: path))
    }

    public struct Invalid: Error, Equatable, Sendable {
        public let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// The `Host` field of the subrequest.
    public var authority: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == 80 ? h : "\(h):\(port)"
    }
}
