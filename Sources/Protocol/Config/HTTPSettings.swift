/// Limits and timeouts of the gateway's HTTP listeners (`[http]` in gateway.toml, DESIGN §3).
public struct HTTPSettings: Equatable, Sendable {
    /// A request head (request line and header fields) over this many bytes gets 431.
    public var maxHeaderSize = 16 << 10
    /// A request body over this many bytes gets 413; nil: no limit (bodies are streamed).
    public var maxBodySize: Int?
    /// A client that has not sent a whole request head within this time gets 408.
    public var headerTimeout: Duration = .seconds(10)
    /// An idle keep-alive connection is closed after this time.
    public var idleTimeout: Duration = .seconds(75)
    /// The agent must answer (response head) within this time after the request was sent,
    /// or the client gets 504.
    public var responseTimeout: Duration = .seconds(60)

    public init() {}

    mutating func read(from t: inout TableReader) {
        if let n = t.size("max_header_size", range: 1024...(1 << 20)) { maxHeaderSize = n }
        if let n = t.size("max_body_size", range: 0...Int.max) { maxBodySize = n }
        for (key, path) in [("header_timeout", \HTTPSettings.headerTimeout), ("idle_timeout", \.idleTimeout),
                            ("response_timeout", \.responseTimeout)] {
            guard let d = t.duration(key) else { continue }
            if d <= .zero { t.error(key, "\(key) must be positive") } else { self[keyPath: path] = d }
        }
    }
}
