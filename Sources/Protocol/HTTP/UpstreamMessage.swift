/// The agent's HTTP/1.1 side of a request stream (DESIGN §2.2): the request it writes to the
/// upstream, and how the upstream's response goes back as HTTP/2 HEADERS.
public enum UpstreamMessage {
    public struct Request: Sendable {
        public let head: HTTPHead
        public let method: String
        public let framing: BodyFraming
        /// An extended CONNECT: the protocol the upstream is asked to switch to.
        public var upgrade: String?
    }

    public struct Refusal: Error, Equatable, Sendable {
        public let reason: String
    }

    /// `endStream`: the HEADERS ended the stream, so there is no body.
    public static func request(_ fields: [HeaderField], endStream: Bool) -> Result<Request, Refusal> {
        guard var method = fields[":method"], let path = fields[":path"], let authority = fields[":authority"] else {
            return .failure(Refusal(reason: "request stream without :method, :path or :authority"))
        }
        var lines: [(String, String)] = [("host", authority)]
        // RFC 8441 in reverse: an extended CONNECT becomes the HTTP/1.1 upgrade request.
        let upgrade = method == "CONNECT" ? fields[":protocol"] : nil
        if method == "CONNECT" {
            guard let upgrade else { return .failure(Refusal(reason: "CONNECT without :protocol on an http service")) }
            method = "GET"
            lines += [("connection", "upgrade"), ("upgrade", upgrade)]
        }
        var length: Int64?
        let requestID = fields["fastgw-request-id"]
        for f in fields where !f.name.hasPrefix(":") {
            if HopByHop.names.contains(f.name) || HopByHop.isInternal(f.name) || f.name == "host" { continue }
            if requestID != nil && f.name == "x-request-id" { continue }
            if f.name == "content-length" {
                guard let n = RequestFraming.contentLength(f.value) else {
                    return .failure(Refusal(reason: "invalid content-length"))
                }
                length = n
            }
            lines.append((f.name, f.value))
        }
        let framing: BodyFraming
        if upgrade != nil {
            framing = .none
        } else if let length {
            framing = length == 0 ? .none : .contentLength(length)
        } else if endStream {
            framing = .none
            // Servers may insist on a length for methods that usually carry a body.
            if ["POST", "PUT", "PATCH"].contains(method) { lines.append(("content-length", "0")) }
        } else {
            framing = .chunked
            lines.append(("transfer-encoding", "chunked"))
        }
        // The gateway's id replaces whatever the request carried (the gateway already moved
        // a client's own id to X-Client-Request-Id).
        if let requestID { lines.append(("x-request-id", requestID)) }
        return .success(Request(
            head: HTTPHead(startLine: [method, path, "HTTP/1.1"], fields: lines), method: method, framing: framing, upgrade: upgrade))
    }

    /// The upstream's response as HEADERS for the tunnel: connection-specific fields removed
    /// (HTTP/2 forbids them), names lowercased, and one Content-Length that tells the truth
    /// about the DATA that follows: the length the body was read with, none for a body
    /// delimited otherwise (chunked or until close, where an upstream's Content-Length is
    /// overridden, RFC 9112 §6.3), and for a response without body (HEAD, 204, 304) the
    /// upstream's value only if it is one number. The gateway's HTTP/2 session resets a
    /// stream whose DATA disagrees with its Content-Length.
    public static func responseFields(_ head: HTTPHead, status: Int, framing: BodyFraming) -> [HeaderField] {
        var out = [HeaderField(":status", String(status))]
        let dropped = HopByHop.dropped(by: head)
        for (name, value) in head.fields {
            let lower = name.asciiLowercased()
            if dropped.contains(lower) || HopByHop.isInternal(lower) || lower == "content-length" { continue }
            out.append(HeaderField(lower, value))
        }
        switch framing {
        case .contentLength(let n):
            out.append(HeaderField("content-length", String(n)))
        case .none:
            let lengths = head.values("Content-Length")
            if lengths.count == 1, let n = RequestFraming.contentLength(lengths[0]) {
                out.append(HeaderField("content-length", String(n)))
            }
        case .chunked, .untilClose:
            break
        }
        return out
    }

    /// What the agent does with the upstream's final answer to an upgrade request. Only a
    /// 101 switches protocols; a 2xx on an extended CONNECT would tell the gateway the
    /// upgrade happened (RFC 8441 §5), so a 2xx without the 101 is the upstream's fault
    /// (502); any other status is relayed as an ordinary response.
    public enum UpgradeAnswer: Equatable, Sendable {
        case switched
        case relayed
        case failed(reason: String)
    }

    public static func upgradeAnswer(status: Int) -> UpgradeAnswer {
        switch status {
        case 101: return .switched
        case 200..<300: return .failed(reason: "the upstream answered \(status) to an upgrade request instead of 101 Switching Protocols")
        default: return .relayed
        }
    }

    /// A request stream's fields for an h2c upstream: the same message, minus what belongs
    /// to the tunnel (`fastgw-*`) or to a connection, with the gateway's `x-request-id`.
    public static func h2cRequest(_ fields: [HeaderField]) -> [HeaderField] {
        var out: [HeaderField] = []
        let requestID = fields["fastgw-request-id"]
        for f in fields {
            if f.name == ":scheme" {
                out.append(HeaderField(":scheme", "http"))
            } else if requestID != nil && f.name == "x-request-id" {
                continue
            } else if !HopByHop.isInternal(f.name) && (!HopByHop.names.contains(f.name) || f.name == "te") {
                out.append(f)
            }
        }
        if let requestID { out.append(HeaderField("x-request-id", requestID)) }
        return out
    }

    /// An h2c upstream's response HEADERS or trailers for the tunnel.
    public static func h2cResponse(_ fields: [HeaderField]) -> [HeaderField] {
        fields.filter { !HopByHop.names.contains($0.name) && !HopByHop.isInternal($0.name) }
    }

    /// The upstream's `101 Switching Protocols` as the extended CONNECT's `:status` 200.
    public static func upgradeFields(_ head: HTTPHead) -> [HeaderField] {
        var out = [HeaderField(":status", "200")]
        let dropped = HopByHop.dropped(by: head)
        for (name, value) in head.fields {
            let lower = name.asciiLowercased()
            if dropped.contains(lower) || HopByHop.isInternal(lower) || lower == "content-length" { continue }
            out.append(HeaderField(lower, value))
        }
        return out
    }

    /// The status code of a response head (`HTTP/1.1 200 OK`), if it is one.
    public static func status(of head: HTTPHead) -> Int? {
        guard head.startLine.count >= 2, head.startLine[0].hasPrefix("HTTP/1."),
              let status = Int(head.startLine[1]), (100...999).contains(status) else { return nil }
        return status
    }

    /// Whether the upstream connection can carry another request after this response.
    public static func isReusable(_ head: HTTPHead, framing: BodyFraming) -> Bool {
        if framing == .untilClose { return false }
        let connection = head.tokens("Connection")
        if head.startLine.first == "HTTP/1.0" { return connection.contains("keep-alive") }
        return !connection.contains("close")
    }
}
