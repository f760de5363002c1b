import Protocol

/// The small text response the gateway writes itself (DESIGN §3): status, cause, and the
/// request id that is also in the log line about it.
struct HTTPErrorPage {
    let status: Int
    let reason: String
    let requestID: String
    let keepAlive: Bool

    var body: String {
        "\(status) \(ReasonPhrase.of(status)): \(reason)\nrequest id: \(requestID)\n"
    }

    var bytes: [UInt8] {
        let payload = Array(body.utf8)
        var fields: [(String, String)] = [
            ("content-type", "text/plain; charset=utf-8"),
            ("content-length", String(payload.count)),
            ("x-request-id", requestID),
            ("cache-control", "no-store"),
        ]
        if status == 503 { fields.append(("retry-after", "5")) }
        fields.append(("connection", keepAlive ? "keep-alive" : "close"))
        return HTTPHead(startLine: ["HTTP/1.1", String(status), ReasonPhrase.of(status)], fields: fields).serialized() + payload
    }
}

/// Request ids: 16 hex digits, random, so they are unique across gateways and restarts.
enum RequestID {
    static func make() -> String {
        let s = String(UInt64.random(in: .min ... .max), radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
