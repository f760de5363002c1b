/// `[metrics]`, in either role's file: an HTTP listener for balancers and Prometheus
/// (`/metrics`, `/healthz`, `/readyz`).
public struct MetricsConfig: Equatable, Sendable {
    public var listen: HostPort
    /// Who may ask; empty: anyone who reaches `listen`.
    public var allow = CIDRSet()

    public init(listen: HostPort) {
        self.listen = listen
    }

    /// The `[metrics]` table of `root`, if any; nil after an error (reported on its line).
    static func read(_ root: inout TableReader) -> MetricsConfig? {
        guard var t = root.table("metrics") else { return nil }
        let listen = t.hostPort("listen")
        if !t.has("listen") { t.error("listen", "[metrics] listen is required (for example \"127.0.0.1:9464\")") }
        var config = listen.map(MetricsConfig.init)
        for text in t.strings("allow") ?? [] {
            switch CIDR.parse(text) {
            case .success(let block): config?.allow.insert(block)
            case .failure(let e): t.error("allow", "allow: \(e)")
            }
        }
        t.rejectUnknownKeys()
        return config
    }
}
