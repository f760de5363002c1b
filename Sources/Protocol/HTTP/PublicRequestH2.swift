/// Requests from public HTTP/2 clients. nghttp2 has already checked the message rules
/// (pseudo-header fields present once and first, no connection-specific fields, lower-case
/// names, Content-Length against the DATA); what is left is what the gateway itself needs.
extension PublicRequest {
    /// `endStream`: the HEADERS frame ended the stream (no body).
    public static func parse(h2 fields: [HeaderField], endStream: Bool) -> Result<PublicRequest, Refusal> {
        func no(_ status: Int, _ reason: String) -> Result<PublicRequest, Refusal> {
            .failure(Refusal(status: status, reason: reason))
        }
        guard let method = fields[":method"] else { return no(400, "missing :method") }
        if method == "CONNECT" { return no(405, "CONNECT is not served by this gateway") }
        guard let rawPath = fields[":path"], !rawPath.isEmpty else { return no(400, "missing :path") }
        let path: String
        switch PublicRequest.routedPath(rawPath, method: method) {
        case .success(let p): path = p
        case .failure(let r): return .failure(r)
        }
        // RFC 9113 §8.3.1: :authority, else Host; both present must agree.
        let host = fields["host"]
        guard let authority = fields[":authority"] ?? host, !authority.isEmpty else {
            return no(400, "missing :authority")
        }
        if let host, HostPattern.normalize(host) != HostPattern.normalize(authority) {
            return no(400, "Host \"\(host)\" disagrees with :authority \"\(authority)\"")
        }
        guard PublicRequest.isPlainAuthority(authority) else {
            return no(400, "malformed :authority")
        }
        var regular: [(name: String, value: String)] = []
        var cookies: [String] = []
        for f in fields where !f.name.hasPrefix(":") && f.name != "host" {
            // RFC 9113 §8.2.3: split cookies are joined again for HTTP/1.1 upstreams.
            if f.name == "cookie" { cookies.append(f.value) } else { regular.append((f.name, f.value)) }
        }
        if !cookies.isEmpty { regular.append(("cookie", cookies.joined(separator: "; "))) }
        let framing: RequestFraming
        if endStream {
            framing = .none
        } else if let text = fields["content-length"] {
            guard let n = RequestFraming.contentLength(text) else { return no(400, "invalid Content-Length") }
            framing = n == 0 ? .none : .contentLength(n)
        } else {
            // A length only the end of the stream tells: the agent chunks it for HTTP/1.1.
            framing = .chunked
        }
        if let expect = fields["expect"], expect.lowercased() != "100-continue" {
            return no(417, "unsupported expectation \"\(expect)\"")
        }
        let head = HTTPHead(startLine: [method, path, "HTTP/2"], fields: regular)
        return .success(PublicRequest(
            head: head, method: method, path: path, version: "HTTP/2", authority: authority, framing: framing,
            keepAlive: true, expectsContinue: false, upgrade: nil))
    }
}

/// A response relayed to a public HTTP/2 client: the agent's fields without connection
/// fields and fastgw's own.
public enum PublicResponseH2 {
    public static func fields(_ fields: [HeaderField]) -> [HeaderField]? {
        guard let status = fields[":status"], let code = Int(status), (100...999).contains(code) else { return nil }
        var out = [HeaderField(":status", status)]
        for f in fields where !f.name.hasPrefix(":") {
            if HopByHop.names.contains(f.name) || HopByHop.isInternal(f.name) { continue }
            out.append(f)
        }
        return out
    }
}
