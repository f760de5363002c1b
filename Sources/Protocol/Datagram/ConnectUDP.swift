/// The HEADERS of a UDP flow's tunnel stream: extended CONNECT (RFC 8441) with
/// `:protocol connect-udp` (RFC 9298). The target is the agent's service, not a host the
/// agent would resolve: `:authority` is the service name and `:path` the RFC 9298 template
/// filled with it and the public port. `capsule-protocol: ?1` says the DATA are capsules.
public enum ConnectUDP {
    public static let protocolToken = "connect-udp"

    public static func requestHeaders(service: String, port: Int) -> [HeaderField] {
        [
            HeaderField(":method", "CONNECT"), HeaderField(":protocol", protocolToken),
            HeaderField(":scheme", "https"), HeaderField(":authority", service),
            HeaderField(":path", "/.well-known/masque/udp/\(service)/\(port)/"),
            HeaderField("capsule-protocol", "?1"),
        ]
    }

    /// Whether a stream's request HEADERS open a UDP flow. The gateway's streams for public
    /// HTTP upgrades always carry `fastgw-service`, so an HTTP client asking for
    /// `Upgrade: connect-udp` reaches an http service, never a udp one.
    public static func isFlow(_ fields: [HeaderField]) -> Bool {
        fields[":method"] == "CONNECT" && fields[":protocol"] == protocolToken && fields["fastgw-service"] == nil
    }
}
