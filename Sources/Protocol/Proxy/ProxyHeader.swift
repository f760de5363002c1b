/// What a PROXY protocol header says (haproxy's proxy-protocol.txt, versions 1 and 2): the
/// connection a proxy accepted, so the next hop can attribute this one to the real client.
/// The gateway reads it on public listeners (from trusted proxies only) and the agent writes
/// it to upstreams that ask for it.
public struct ProxyHeader: Equatable, Sendable {
    public enum Version: Sendable { case v1, v2 }

    /// `local`: the proxy speaks for itself (health checks, v2 LOCAL or v1 UNKNOWN) — the
    /// receiver uses the socket's own addresses. `proxied`: source and destination of the
    /// connection the proxy accepted.
    public enum Addresses: Equatable, Sendable {
        case local
        case proxied(source: IPEndpoint, destination: IPEndpoint)
    }

    public let version: Version
    public let addresses: Addresses

    public init(version: Version, addresses: Addresses) {
        self.version = version
        self.addresses = addresses
    }
}
