/// How an agent reaches its gateways: directly, or through one egress proxy, taken from the
/// config (`[agent] proxy = "http://…"`) or from the environment (`proxy = "env"`:
/// `HTTPS_PROXY`, then `ALL_PROXY`, with `NO_PROXY` naming the gateways reached directly).
public struct EgressRoute: Equatable, Sendable {
    public enum Source: Equatable, Sendable {
        /// No `proxy` key.
        case direct
        /// `proxy = "<url>"`.
        case config
        /// `proxy = "env"`, and the variable the proxy came from (nil: none was set).
        case environment(variable: String?)
    }

    public var source = Source.direct
    public var proxy: EgressProxy?
    /// `proxy = "env"`: `NO_PROXY`.
    public var bypass = NoProxyList()

    public init(source: Source = .direct, proxy: EgressProxy? = nil, bypass: NoProxyList = NoProxyList()) {
        self.source = source
        self.proxy = proxy
        self.bypass = bypass
    }

    /// The proxy a dial to `gateway` goes through; nil for a direct connection.
    public func proxy(for gateway: HostPort) -> EgressProxy? {
        guard let proxy, !bypass.matches(host: gateway.host) else { return nil }
        return proxy
    }

    /// The variables `proxy = "env"` reads, in order: the first one set and not empty wins.
    public static let proxyVariables = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    public static let bypassVariables = ["NO_PROXY", "no_proxy"]
}
