import Protocol

/// The small text response the gateway writes itself (DESIGN §3): status, cause, and the
/// request id that is also in the log line about it.
struct HTTPErrorPage {
    let status: Int
    let reason: String
    let requestID: String
    var keepAlive = false
    /// Fields of the answer besides the page's own (a policy's `retry-after`, `ratelimit`).
    /// Lowercased names; a `content-type` or `cache-control` among them replaces the page's.
    var extraFields: [HeaderField] = []
    /// A body other than the page's text (a forward-auth service's refusal, passed on).
    var customBody: [UInt8]?
    /// The answer to a HEAD request: the fields (with the body's length) and no body.
    var headOnly = false

    var body: [UInt8] {
        customBody ?? Array("\(status) \(ReasonPhrase.of(status)): \(reason)\nrequest id: \(requestID)\n".utf8)
    }

    /// Every field but the connection's (HTTP/2 has none).
    var fields: [HeaderField] {
        var fields = [
            HeaderField("content-type", "text/plain; charset=utf-8"),
            HeaderField("content-length", String(body.count)),
            HeaderField("x-request-id", requestID),
            HeaderField("cache-control", "no-store"),
        ]
        if status == 503 { fields.append(HeaderField("retry-after", "5")) }
        let replaced = Set(extraFields.map(\.name)).intersection(["content-type", "cache-control"])
        if !replaced.isEmpty { fields.removeAll { replaced.contains($0.name) } }
        return fields + extraFields
    }

    /// The whole HTTP/1.1 response.
    var bytes: [UInt8] {
        let lines = fields.map { ($0.name, $0.value) } + [("connection", keepAlive ? "keep-alive" : "close")]
        return HTTPHead(startLine: ["HTTP/1.1", String(status), ReasonPhrase.of(status)], fields: lines).serialized() + (headOnly ? [] : body)
    }
}

/// Request ids: 16 hex digits, random, so they are unique across gateways and restarts.
enum RequestID {
    static func make() -> String {
        let s = String(UInt64.random(in: .min ... .max), radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
