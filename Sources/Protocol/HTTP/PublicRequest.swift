/// A request a public client sent to an HTTP listener, checked and ready to become a request
/// stream to an agent (DESIGN §2.2): hop-by-hop fields dropped, `fastgw-*` fields and the
/// client's forwarding claims (`ForwardedFields`) stripped, X-Forwarded-* set, the path in
/// its normal form (`PathNormalizer`).
public struct PublicRequest: Sendable {
    public let head: HTTPHead
    public let method: String
    /// Origin-form path and query (`/a?b`) in `PathNormalizer`'s normal form, `*` for
    /// `OPTIONS *`: what the request is routed on and what the upstream receives.
    public let path: String
    public let version: String
    /// The Host the client asked for (or the authority of an absolute-form target).
    public let authority: String
    public let framing: RequestFraming
    /// The client wants the connection kept open after this exchange.
    public let keepAlive: Bool
    /// `Expect: 100-continue`: the gateway answers 100 itself once the request has a route.
    public let expectsContinue: Bool
    /// An HTTP/1.1 upgrade (`Connection: upgrade` + `Upgrade: websocket`): the protocol
    /// token, lowercased. It travels as an extended CONNECT stream (RFC 8441).
    public let upgrade: String?

    public typealias Refusal = RequestFraming.Refusal

    public static func parse(_ head: HTTPHead) -> Result<PublicRequest, Refusal> {
        func no(_ status: Int, _ reason: String) -> Result<PublicRequest, Refusal> {
            .failure(Refusal(status: status, reason: reason))
        }
        guard head.startLine.count == 3 else { return no(400, "malformed request line") }
        let (method, target, version) = (head.startLine[0], head.startLine[1], head.startLine[2])
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            return version.hasPrefix("HTTP/") ? no(505, "\(version) is not supported (use HTTP/1.1)") : no(400, "malformed request line")
        }
        guard method.allSatisfy({ HTTPHeadParser.isTokenChar($0) }) else { return no(400, "malformed method") }
        if method == "CONNECT" { return no(405, "CONNECT is not served by this gateway") }
        let hosts = head.values("Host")
        guard hosts.count <= 1 else { return no(400, "more than one Host header") }
        var authority = hosts.first
        var rawPath = target
        if !target.hasPrefix("/") && target != "*", let (a, p) = Self.absoluteForm(target) {
            // RFC 9112 §3.2.2: the target's authority wins over Host.
            authority = a
            rawPath = p
        }
        let path: String
        switch Self.routedPath(rawPath, method: method) {
        case .success(let p): path = p
        case .failure(let r): return .failure(r)
        }
        guard let authority, !authority.isEmpty else { return no(400, "missing Host header") }
        guard Self.isPlainAuthority(authority) else {
            return no(400, "malformed Host header")
        }
        let framing: RequestFraming
        switch RequestFraming.of(head, version: version) {
        case .success(let f): framing = f
        case .failure(let r): return .failure(r)
        }
        let connection = head.tokens("Connection")
        let keepAlive = version == "HTTP/1.1" ? !connection.contains("close") : connection.contains("keep-alive")
        var expectsContinue = false
        if let expect = head["Expect"] {
            guard expect.lowercased() == "100-continue" else { return no(417, "unsupported expectation \"\(expect)\"") }
            expectsContinue = version == "HTTP/1.1"
        }
        return .success(PublicRequest(
            head: head, method: method, path: path, version: version, authority: authority, framing: framing,
            keepAlive: keepAlive, expectsContinue: expectsContinue,
            upgrade: Self.upgrade(head, version: version, method: method, framing: framing, connection: connection)))
    }

    /// The protocol a request asks to switch to, when the gateway carries it: HTTP/1.1, a
    /// GET without a body, named in Connection. `h2c` is not offered (the request is then
    /// served as an ordinary one, its Upgrade dropped as hop-by-hop).
    static func upgrade(_ head: HTTPHead, version: String, method: String, framing: RequestFraming, connection: [String]) -> String? {
        guard version == "HTTP/1.1", method == "GET", framing == .none, connection.contains("upgrade"),
              let first = head.tokens("Upgrade").first, first != "h2c", first.allSatisfy({ HTTPHeadParser.isTokenChar($0) || $0 == "/" })
        else { return nil }
        return first
    }

    /// The path the request is routed on and forwarded with: `*` for `OPTIONS *`, else the
    /// target in `PathNormalizer`'s normal form. Refusals are 400.
    static func routedPath(_ target: String, method: String) -> Result<String, Refusal> {
        if target == "*" && method == "OPTIONS" { return .success(target) }
        return PathNormalizer.normalize(target).mapError { Refusal(status: 400, reason: $0.reason) }
    }

    /// `http://host[:port]/path` → (host[:port], /path).
    static func absoluteForm(_ target: String) -> (String, String)? {
        let lower = target.lowercased()
        guard let scheme = ["http://", "https://"].first(where: { lower.hasPrefix($0) }) else { return nil }
        let rest = target.dropFirst(scheme.count)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = String(rest[..<slash])
        var path = String(rest[slash...])
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        return authority.isEmpty ? nil : (authority, path)
    }

    /// The request stream's HEADERS. `hop` is where the request came from; its forwarding
    /// fields are kept and continued only when it is a trusted proxy.
    public func tunnelHeaders(scheme: String, hop: ForwardedFields.Hop, service: String, requestID: String) -> [HeaderField] {
        var out = [
            HeaderField(":method", upgrade == nil ? method : "CONNECT"), HeaderField(":scheme", scheme),
            HeaderField(":authority", authority), HeaderField(":path", path),
        ]
        if let upgrade { out.append(HeaderField(":protocol", upgrade)) }
        let dropped = HopByHop.dropped(by: head).union(["host", "expect"])
        for (name, value) in head.fields {
            let lower = name.asciiLowercased()
            if HopByHop.isInternal(lower) || ForwardedFields.isClientClaim(lower) { continue }
            // `TE: trailers` is the one TE HTTP/2 allows; gRPC servers insist on it.
            if dropped.contains(lower) && !(lower == "te" && value.strippingSpaces().lowercased() == "trailers") { continue }
            // A body the gateway de-chunks travels without a length; 0 for none at all.
            if lower == "content-length" && framing == .none { continue }
            out.append(HeaderField(lower, value))
        }
        if let id = head["X-Request-Id"].flatMap(ForwardedFields.clientRequestID) {
            out.append(HeaderField(ForwardedFields.clientRequestIDName, id))
        }
        out += ForwardedFields.fields(hop: hop, proto: scheme, host: authority, head: head)
        out.append(HeaderField("fastgw-service", service))
        out.append(HeaderField("fastgw-request-id", requestID))
        return out
    }
}

/// The head of a response relayed to a public HTTP/1.1 client, from the agent's HEADERS.
public struct PublicResponseHead: Sendable {
    public let status: Int
    public let bytes: [UInt8]
    /// How the gateway writes the body: raw (`contentLength`, `untilClose`), chunk-encoded,
    /// or not at all.
    public let framing: BodyFraming
    /// Whether the connection stays open after the body.
    public let keepAlive: Bool

    public static func make(
        fields: [HeaderField], requestMethod: String, clientVersion: String, keepAlive requested: Bool
    ) -> PublicResponseHead? {
        guard let statusText = fields[":status"], let status = Int(statusText), (100...999).contains(status) else { return nil }
        var lines: [(String, String)] = []
        var length: Int64?
        for f in fields where !f.name.hasPrefix(":") {
            if HopByHop.names.contains(f.name) || HopByHop.isInternal(f.name) { continue }
            if f.name == "content-length" { length = RequestFraming.contentLength(f.value) }
            lines.append((f.name, f.value))
        }
        var keepAlive = requested
        let framing: BodyFraming
        if requestMethod == "HEAD" || (100..<200).contains(status) || status == 204 || status == 304 {
            framing = .none
        } else if let length {
            framing = .contentLength(length)
        } else if clientVersion == "HTTP/1.1" {
            framing = .chunked
            lines.append(("transfer-encoding", "chunked"))
        } else {
            framing = .untilClose
            keepAlive = false
        }
        if !(100..<200).contains(status) {
            if !keepAlive {
                lines.append(("connection", "close"))
            } else if clientVersion == "HTTP/1.0" {
                lines.append(("connection", "keep-alive"))
            }
        }
        let head = HTTPHead(startLine: ["HTTP/1.1", String(status), ReasonPhrase.of(status)], fields: lines)
        return PublicResponseHead(status: status, bytes: head.serialized(), framing: framing, keepAlive: keepAlive)
    }

    /// `101 Switching Protocols` for an upgrade the agent accepted (`:status` 200 on its
    /// extended CONNECT stream, carrying the upstream's 101 fields). Raw bytes follow both ways.
    public static func upgraded(fields: [HeaderField], protocol name: String) -> PublicResponseHead {
        var lines: [(String, String)] = [("connection", "upgrade"), ("upgrade", name)]
        for f in fields where !f.name.hasPrefix(":") {
            if HopByHop.names.contains(f.name) || HopByHop.isInternal(f.name) || f.name == "content-length" { continue }
            lines.append((f.name, f.value))
        }
        let head = HTTPHead(startLine: ["HTTP/1.1", "101", ReasonPhrase.of(101)], fields: lines)
        return PublicResponseHead(status: 101, bytes: head.serialized(), framing: .untilClose, keepAlive: false)
    }
}

extension PublicRequest {
    /// A Host value the gateway routes on: visible ASCII without "/" or "@" (no userinfo, no
    /// path). Checked on bytes: Character properties cost a Unicode table lookup each.
    static func isPlainAuthority(_ authority: String) -> Bool {
        authority.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "@") }
    }
}
