/// A proxy an agent must go through to reach its gateways (issue #17: offices whose only way
/// out is an HTTP or SOCKS proxy): `http://host:port` (HTTP CONNECT, RFC 9110 §9.3.6),
/// `socks5://host:port` (RFC 1928, the gateway's address resolved by the agent) or
/// `socks5h://host:port` (the gateway's name resolved by the proxy). The tunnel's own TLS
/// runs inside, end to end, so the proxy sees only the gateway's host and port.
public struct EgressProxy: Equatable, Sendable, CustomStringConvertible {
    public enum Scheme: String, Equatable, Sendable {
        case http, socks5, socks5h
    }

    public var scheme: Scheme
    public var endpoint: HostPort
    public var credentials: ProxyCredentials?

    public init(scheme: Scheme, endpoint: HostPort, credentials: ProxyCredentials? = nil) {
        self.scheme = scheme
        self.endpoint = endpoint
        self.credentials = credentials
    }

    /// `socks5://127.0.0.1:1080`: what logs, errors and `fastgwctl` show. Never the
    /// credentials, whose user name alone may already say more than a log should.
    public var description: String { "\(scheme.rawValue)://\(endpoint)" }

    /// Why a proxy URL cannot be used, in words that never contain its password.
    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Reads `scheme://[user:password@]host:port[/]`. `schemeOptional`: a bare
    /// `host:port` means `http://` (what curl and most tools do with `HTTPS_PROXY`); a
    /// config file spells the scheme out.
    public static func parse(_ text: String, schemeOptional: Bool = false) -> Result<EgressProxy, ParseError> {
        func no(_ why: String) -> Result<EgressProxy, ParseError> { .failure(ParseError(description: why)) }
        var rest = Substring(text)
        var scheme = Scheme.http
        if let split = Self.splitScheme(rest) {
            let name = split.scheme.lowercased()
            rest = split.rest
            switch name {
            case "http": scheme = .http
            case "socks5": scheme = .socks5
            case "socks5h": scheme = .socks5h
            case "https":
                return no("https:// proxies (TLS to the proxy itself) are not supported; use http://host:port "
                    + "(the tunnel inside the CONNECT is TLS to the gateway anyway)")
            case "socks4", "socks4a":
                return no("\(name):// is not supported; use socks5:// or socks5h://")
            default:
                return no("unsupported scheme \"\(name)\"; use http://, socks5:// or socks5h://")
            }
        } else if !schemeOptional {
            return no("the scheme is missing: write http://host:port, socks5://host:port or socks5h://host:port")
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        if rest.contains(where: { $0 == "/" || $0 == "?" || $0 == "#" }) {
            return no("a proxy URL has no path, query or fragment: \(scheme.rawValue)://host:port")
        }
        var credentials: ProxyCredentials?
        if let at = rest.lastIndex(of: "@") {
            switch ProxyCredentials.parse(userinfo: rest[..<at]) {
            case .success(let c): credentials = c
            case .failure(let e): return no(e.description)
            }
            rest = rest[rest.index(after: at)...]
        }
        switch HostPort.parse(String(rest)) {
        case .success(let endpoint):
            return .success(EgressProxy(scheme: scheme, endpoint: endpoint, credentials: credentials))
        case .failure(.missingPort):
            return no("the port is missing: \(scheme.rawValue)://host:port (squid listens on 3128, SOCKS servers on 1080)")
        case .failure(let e):
            return no("\(e)")
        }
    }

    /// `scheme` and what follows `scheme://`; nil without `://`.
    private static func splitScheme(_ text: Substring) -> (scheme: Substring, rest: Substring)? {
        guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else { return nil }
        return (text[..<colon], text[text.index(colon, offsetBy: 3)...])
    }

    /// `text` with any password in it replaced by `***`, for quoting a value in a message:
    /// `http://alice:***@proxy:3128`. Works on malformed values too.
    /// Everything up to the last `@` counts as user info, so a password holding an unescaped
    /// `/`, `?` or `#` (which ends the authority for a parser) is still hidden.
    public static func redacted(_ text: String) -> String {
        let start = splitScheme(Substring(text))?.rest.startIndex ?? text.startIndex
        guard let at = text[start...].lastIndex(of: "@") else { return text }
        guard let colon = text[start..<at].firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }
}

/// A user name and password for an egress proxy: HTTP Basic (`Proxy-Authorization`, RFC
/// 9110 §11.7.2) or SOCKS5 username/password (RFC 1929). `description` hides the password.
public struct ProxyCredentials: Equatable, Sendable, CustomStringConvertible {
    public let user: String
    public let password: String

    /// RFC 1929 carries each in a length byte; HTTP has no limit, but one rule keeps one
    /// file valid for either kind of proxy.
    public static let maxLength = 255

    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }

    public var description: String { "\(user):***" }

    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// The contents of a `proxy_credentials` file: `user:password` on one line (a trailing
    /// newline is fine). Not percent-encoded: the file holds the password as it is.
    public static func parse(file text: String) -> Result<ProxyCredentials, ParseError> {
        var line = Substring(text)
        while let last = line.last, last == "\n" || last == "\r" { line = line.dropLast() }
        if line.contains("\n") || line.contains("\r") {
            return .failure(ParseError(description: "the file must hold one line, user:password"))
        }
        guard let colon = line.firstIndex(of: ":") else {
            return .failure(ParseError(description: "the file must hold user:password (no colon found)"))
        }
        return checked(user: String(line[..<colon]), password: String(line[line.index(after: colon)...]))
    }

    /// The `user:password` before `@` in a proxy URL, percent-decoded (RFC 3986 §3.2.1).
    static func parse(userinfo: Substring) -> Result<ProxyCredentials, ParseError> {
        guard let colon = userinfo.firstIndex(of: ":") else {
            return .failure(ParseError(description: "user without password before \"@\": write user:password@host:port"))
        }
        guard let user = percentDecoded(userinfo[..<colon]), let password = percentDecoded(userinfo[userinfo.index(after: colon)...]) else {
            return .failure(ParseError(description: "bad %-escape in the user:password part of the proxy URL"))
        }
        return checked(user: user, password: password)
    }

    private static func checked(user: String, password: String) -> Result<ProxyCredentials, ParseError> {
        func no(_ why: String) -> Result<ProxyCredentials, ParseError> { .failure(ParseError(description: why)) }
        if user.isEmpty { return no("the proxy user name is empty") }
        if password.isEmpty { return no("the proxy password is empty") }
        if user.contains(":") { return no("the proxy user name cannot contain \":\" (HTTP Basic separates user and password with it)") }
        if user.utf8.count > maxLength || password.utf8.count > maxLength {
            return no("the proxy user name and password must each be at most \(maxLength) bytes (RFC 1929)")
        }
        let control = { (s: String) in s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f } }
        if control(user) || control(password) { return no("the proxy user name and password cannot contain control characters") }
        return .success(ProxyCredentials(user: user, password: password))
    }

    private static func percentDecoded(_ text: Substring) -> String? {
        var out: [UInt8] = []
        var bytes = text.utf8.makeIterator()
        while let b = bytes.next() {
            guard b == UInt8(ascii: "%") else { out.append(b); continue }
            guard let h = bytes.next().flatMap(Hex.value), let l = bytes.next().flatMap(Hex.value) else { return nil }
            out.append(h << 4 | l)
        }
        return String(validating: out, as: UTF8.self)
    }
}
