/// What a PROXY protocol header says (haproxy's proxy-protocol.txt, versions 1 and 2): the
/// connection a proxy accepted, so the next hop can attribute this one to the real client.
/// The gateway reads it on public listeners (from trusted proxies only) and the agent writes
/// it to upstreams that ask for it.
public struct ProxyHeader: Equatable, Sendable {
    public enum Version: Sendable { case v1, v2 }

    /// `local`: the proxy speaks for itself (v2 LOCAL: health checks). `unknown`: the proxy
    /// relays a connection but cannot name its client (v1 UNKNOWN, v2 PROXY with an UNSPEC
    /// or AF_UNIX address block). In both the receiver uses the socket's own addresses, but
    /// no client was named: the bytes that follow are not the balancer's words, so they
    /// earn none of the trust the balancer has. `proxied`: source and destination of the
    /// connection the proxy accepted.
    public enum Addresses: Equatable, Sendable {
        case local
        case unknown
        case proxied(source: IPEndpoint, destination: IPEndpoint)

        /// Whether the header named the client the connection is from.
        public var namesClient: Bool {
            if case .proxied = self { return true }
            return false
        }
    }

    public let version: Version
    public let addresses: Addresses

    public init(version: Version, addresses: Addresses) {
        self.version = version
        self.addresses = addresses
    }
}
