/// `[limits]` in gateway.toml: how many connections the gateway accepts (DESIGN §9). Values
/// left out are derived from the descriptor limit when the daemon starts
/// (`ConnectionLimits.resolve`), so the defaults fit the machine they run on.
public struct LimitsConfig: Equatable, Sendable {
    /// Open connections on all public listeners together.
    public var maxConnections: Int?
    /// Open public connections from one client address (IPv4 /32, IPv6 /64).
    public var maxConnectionsPerIP: Int?
    /// Open connections on the tunnel listener, handshaking ones included.
    public var maxTunnelConnections: Int?
    /// Open tunnel connections from one client address.
    public var maxTunnelConnectionsPerIP: Int?
    /// How long a public TCP connection waits for the agent to answer its stream (the
    /// agent's own `connect_timeout` answers 504 well within it).
    public var streamOpenTimeout: Duration = .seconds(30)
    /// How long a connection on a `proxy_protocol` listener may take to send its whole PROXY
    /// header; a balancer sends it with its first packet.
    public var proxyHeaderTimeout: Duration = .seconds(5)
    /// UDP services: a flow (one client ip:port) with no datagram either way for this long ends.
    public var udpIdleTimeout: Duration = .seconds(60)
    /// UDP services: flows at once on one UDP port, and from one client address (IPv4 /32,
    /// IPv6 /64); a datagram that would start a flow past either is dropped and counted.
    public var maxUDPFlows = 4096
    public var maxUDPFlowsPerIP = 64

    public init() {}

    mutating func read(from t: inout TableReader) {
        let range = 1...(1 << 24)
        maxConnections = t.int("max_connections", range: range)
        maxConnectionsPerIP = t.int("max_connections_per_ip", range: range)
        maxTunnelConnections = t.int("max_tunnel_connections", range: range)
        maxTunnelConnectionsPerIP = t.int("max_tunnel_connections_per_ip", range: range)
        if let d = t.duration("stream_open_timeout") {
            if d <= .zero { t.error("stream_open_timeout", "stream_open_timeout must be positive") } else { streamOpenTimeout = d }
        }
        if let d = t.duration("udp_idle_timeout") {
            if d <= .zero { t.error("udp_idle_timeout", "udp_idle_timeout must be positive") } else { udpIdleTimeout = d }
        }
        if let n = t.int("max_udp_flows", range: 1...(1 << 20)) { maxUDPFlows = n }
        if let n = t.int("max_udp_flows_per_ip", range: 1...(1 << 20)) { maxUDPFlowsPerIP = n }
        if let d = t.duration("proxy_header_timeout") {
            if d <= .zero { t.error("proxy_header_timeout", "proxy_header_timeout must be positive") } else { proxyHeaderTimeout = d }
        }
    }
}

/// The limits in force: `[limits]` with its gaps filled from the descriptor limit.
public struct ConnectionLimits: Equatable, Sendable {
    public var publicPool: ConnectionAdmission.Limits
    public var tunnelPool: ConnectionAdmission.Limits
    public var streamOpenTimeout: Duration
    /// Descriptors public connections never take, so agents and operators get in while the
    /// public listeners are full: the tunnel pool plus `fixedReserve`.
    public var reserve: Int
    /// What an operator should know about the values (a configured value lowered to fit).
    public var notes: [String] = []

    /// Listeners, event loops, the control socket's clients, files read by a reload.
    public static let fixedReserve = 128

    /// `openFiles`: RLIMIT_NOFILE in force (after the daemon raised it to the hard limit).
    public static func resolve(_ c: LimitsConfig, openFiles: Int) -> ConnectionLimits {
        var notes: [String] = []
        let tunnelTotal = c.maxTunnelConnections ?? min(max(openFiles / 16, 32), 2048)
        let reserve = tunnelTotal + fixedReserve
        let room = max(openFiles - reserve, 1)
        var publicTotal = c.maxConnections ?? room
        if publicTotal > room {
            notes.append("max_connections \(publicTotal) lowered to \(room): the descriptor limit is \(openFiles) and \(reserve) are kept for agents and operators")
            publicTotal = room
        }
        // One address may take an eighth: a flood from one host leaves the rest to others,
        // while an office behind one NAT (or a test on loopback) is not cut off.
        let publicPerIP = min(c.maxConnectionsPerIP ?? max(256, publicTotal / 8), publicTotal)
        let tunnelPerIP = min(c.maxTunnelConnectionsPerIP ?? 64, tunnelTotal)
        return ConnectionLimits(
            publicPool: .init(total: publicTotal, perClient: publicPerIP),
            tunnelPool: .init(total: tunnelTotal, perClient: tunnelPerIP),
            streamOpenTimeout: c.streamOpenTimeout, reserve: reserve, notes: notes)
    }
}
