/// What the `[metrics]` listener answers, decided on the request head alone: `/metrics`
/// (Prometheus text exposition), `/healthz` (the process and its event loops run),
/// `/readyz` (the role is ready to serve: a balancer takes a draining gateway out with it).
/// Query strings are ignored; anything else is 404, a method other than GET or HEAD 405.
public enum MetricsEndpoint {
    public enum Resource: Equatable, Sendable {
        case metrics
        case health
        case ready
    }

    public struct Answer: Error, Equatable, Sendable {
        public var status: Int
        public var contentType: String
        public var body: String
        public var headOnly: Bool

        public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: String, headOnly: Bool = false) {
            self.status = status
            self.contentType = contentType
            self.body = body
            self.headOnly = headOnly
        }

        /// The whole HTTP/1.1 response; the connection closes after it.
        public var bytes: [UInt8] {
            let head = HTTPHead(startLine: ["HTTP/1.1", String(status), ReasonPhrase.of(status)], fields: [
                ("Content-Type", contentType), ("Content-Length", String(body.utf8.count)), ("Cache-Control", "no-store"),
                ("Connection", "close"),
            ])
            return head.serialized() + (headOnly ? [] : Array(body.utf8))
        }
    }

    /// The content type Prometheus scrapers expect for the text format.
    public static let prometheusType = "text/plain; version=0.0.4; charset=utf-8"

    /// The resource a request asks for, or the answer that refuses it.
    public static func route(_ head: HTTPHead) -> Result<(Resource, headOnly: Bool), Answer> {
        guard head.startLine.count == 3, head.startLine[2].hasPrefix("HTTP/1.") else {
            return .failure(Answer(status: 400, body: "malformed request\n"))
        }
        let method = head.startLine[0]
        guard method == "GET" || method == "HEAD" else {
            return .failure(Answer(status: 405, body: "only GET and HEAD\n"))
        }
        let path = head.startLine[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let resource: Resource
        switch path {
        case "/metrics": resource = .metrics
        case "/healthz": resource = .health
        case "/readyz": resource = .ready
        default: return .failure(Answer(status: 404, body: "not found: try /metrics, /healthz or /readyz\n", headOnly: method == "HEAD"))
        }
        return .success((resource, method == "HEAD"))
    }

    /// `/healthz` and `/readyz`: 200 "ok" or 503 with why.
    public static func probe(_ problem: String?, headOnly: Bool) -> Answer {
        guard let problem else { return Answer(status: 200, body: "ok\n", headOnly: headOnly) }
        return Answer(status: 503, body: problem + "\n", headOnly: headOnly)
    }
}
