import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// Live tunnel connections and the TCP and HTTP routes they serve, shared by every event loop of the
/// gateway. It is touched when connections, registrations and streams begin or end, never per
/// byte, so one lock is enough.
final class GatewayRegistry: Sendable {
    typealias ConnectionID = UInt64

    struct Connection: Sendable {
        let id: ConnectionID
        let agent: String
        let instance: String
        let remote: String
        let carrier: String
        /// The token the agent authenticated with: a reload that changes it closes the connection.
        let token: String
        /// The client certificate the agent presented, checked again at reload.
        let certificate: PeerCertificate?
        let since: NIODeadline
        let tunnel: LoopBoundRef<TunnelConnection>
        var rtt: TimeAmount?
        var streams = 0
        /// The agent sent GOAWAY: no new streams go here.
        var draining = false
        /// What the agent declared last, kept to re-check it when grants change.
        var declared: [ServiceDeclaration] = []
        var accepted: [String] = []
    }

    /// A chosen route for one public TCP connection.
    struct Route: Sendable {
        let connection: ConnectionID
        let agent: String
        let service: String
        let tunnel: LoopBoundRef<TunnelConnection>
    }

    /// A connection serving a private service, and the service's type (`tcp`, `network`).
    struct PrivateEntry: Sendable {
        let connection: ConnectionID
        let agent: String
        let type: String
    }

    /// What a reload did to live connections.
    struct GrantChange: Sendable {
        var closed: [(tunnel: LoopBoundRef<TunnelConnection>, reason: String)] = []
        var reregistered: [(tunnel: LoopBoundRef<TunnelConnection>, accepted: [String], rejected: [ControlMessage.Rejected])] = []
    }

    private struct State {
        var nextID: ConnectionID = 1
        var connections: [ConnectionID: Connection] = [:]
        var routes = TCPRouteTable<ConnectionID>()
        var udpRoutes = TCPRouteTable<ConnectionID>(transport: .udp)
        var httpRoutes = HTTPRouteTable<ConnectionID>()
        /// Private services (`expose = "private"`, network services) by name: visitors only.
        var privateRoutes: [String: [PrivateEntry]] = [:]
        var grants: [String: GatewayConfig.AgentGrant] = [:] {
            didSet { grantedHosts = grants.values.flatMap { $0.allowHosts.compactMap { try? HostPattern.parse($0).get() } } }
        }
        /// Every grant's `allow_hosts`, parsed once per config for unrouted requests.
        var grantedHosts: [HostPattern] = []

        /// Streams on a live connection; nil when it is gone or draining. Reads the fields
        /// in place: a copy of the whole Connection per candidate cost more than the pick.
        func load(of id: ConnectionID) -> Int? {
            guard let i = connections.index(forKey: id), !connections.values[i].draining else { return nil }
            return connections.values[i].streams
        }

        /// Whether the connection runs on `loop` (read in place too).
        func isOn(_ loop: EventLoop, _ id: ConnectionID) -> Bool {
            guard let i = connections.index(forKey: id) else { return false }
            return connections.values[i].tunnel.eventLoop === loop
        }

        /// Counts a new stream against the chosen connection and names the route to it.
        mutating func take(_ id: ConnectionID, service: String) -> Route? {
            guard let i = connections.index(forKey: id) else { return nil }
            connections.values[i].streams += 1
            return Route(connection: id, agent: connections.values[i].agent, service: service, tunnel: connections.values[i].tunnel)
        }
    }

    private let state: NIOLockedValueBox<State>

    init(grants: [GatewayConfig.AgentGrant]) {
        var s = State()
        for g in grants { s.grants[g.name] = g }
        state = NIOLockedValueBox(s)
    }

    var grants: [GatewayConfig.AgentGrant] {
        state.withLockedValue { Array($0.grants.values) }
    }

    func add(
        agent: String, instance: String, remote: String, carrier: String, token: String, certificate: PeerCertificate?,
        tunnel: LoopBoundRef<TunnelConnection>
    ) -> ConnectionID {
        state.withLockedValue { s in
            let id = s.nextID
            s.nextID += 1
            s.connections[id] = Connection(
                id: id, agent: agent, instance: instance, remote: remote, carrier: carrier, token: token,
                certificate: certificate, since: .now(), tunnel: tunnel)
            return id
        }
    }

    func remove(_ id: ConnectionID) {
        state.withLockedValue { s in
            s.connections[id] = nil
            s.routes.remove(connection: id)
            s.udpRoutes.remove(connection: id)
            s.httpRoutes.remove(connection: id)
            Self.removePrivate(&s, connection: id)
        }
    }

    func markDraining(_ id: ConnectionID) {
        state.withLockedValue { s in s.connections[id]?.draining = true }
    }

    func setRTT(_ id: ConnectionID, _ rtt: TimeAmount) {
        state.withLockedValue { s in s.connections[id]?.rtt = rtt }
    }

    func register(_ id: ConnectionID, services: [ServiceDeclaration]) -> (accepted: [String], rejected: [ControlMessage.Rejected]) {
        state.withLockedValue { s in
            guard let c = s.connections[id], let grant = s.grants[c.agent] else {
                return ([], services.map { .init(name: $0.name, reason: "agent is no longer configured") })
            }
            let result = Self.register(&s, id, grant: grant, services: services)
            s.connections[id]?.declared = services
            s.connections[id]?.accepted = result.accepted
            return result
        }
    }

    /// Installs the grants of a new config: connections of agents that were removed, whose
    /// token changed or whose certificate no longer passes are returned for closing; every
    /// other connection's services are checked again, oldest connection first, and those whose
    /// outcome changed are returned so the agent can be told. `reverify` gives a connection's
    /// certificate verified against the new trust (`client_ca`, `client_crl`).
    func updateGrants(
        _ grants: [GatewayConfig.AgentGrant], reverify: (PeerCertificate) -> PeerCertificate = { $0 }
    ) -> GrantChange {
        state.withLockedValue { s in
            var change = GrantChange()
            s.grants = Dictionary(grants.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for id in s.connections.keys.sorted() {
                let c = s.connections[id]!
                s.routes.remove(connection: id)
                s.udpRoutes.remove(connection: id)
                s.httpRoutes.remove(connection: id)
                Self.removePrivate(&s, connection: id)
                guard let grant = s.grants[c.agent] else {
                    change.closed.append((c.tunnel, "agent \"\(c.agent)\" was removed from the configuration"))
                    s.connections[id]?.draining = true
                    continue
                }
                let certificate = grant.auth.usesCertificate ? c.certificate.map(reverify) : c.certificate
                if let reason = TunnelHandshake.recheck((c.token, certificate), agent: c.agent, grant: grant) {
                    change.closed.append((c.tunnel, reason))
                    s.connections[id]?.draining = true
                    continue
                }
                let (accepted, rejected) = Self.register(&s, id, grant: grant, services: c.declared)
                if accepted != c.accepted {
                    change.reregistered.append((c.tunnel, accepted, rejected))
                }
                s.connections[id]?.accepted = accepted
            }
            return change
        }
    }

    /// Each declaration goes to the table of its type; the answer keeps the declared order.
    private static func register(
        _ s: inout State, _ id: ConnectionID, grant: GatewayConfig.AgentGrant, services: [ServiceDeclaration]
    ) -> (accepted: [String], rejected: [ControlMessage.Rejected]) {
        let tcp = s.routes.register(connection: id, grant: grant, services: services.filter { $0.type == "tcp" && !$0.isPrivate })
        let http = s.httpRoutes.register(connection: id, grant: grant, services: services.filter { $0.type == "http" && !$0.isPrivate })
        let udp = s.udpRoutes.register(connection: id, grant: grant, services: services.filter { $0.type == "udp" && !$0.isPrivate })
        let priv = registerPrivate(&s, id, grant: grant, services: services.filter(\.isPrivate))
        // Looked up by name: an agent may declare many services, all of them refused.
        let acceptedNames = Set(tcp.accepted).union(http.accepted).union(udp.accepted).union(priv.accepted)
        var reasons: [String: ControlMessage.Rejected] = [:]
        for r in tcp.rejected + http.rejected + udp.rejected + priv.rejected where reasons[r.name] == nil { reasons[r.name] = r }
        var accepted: [String] = []
        var rejected: [ControlMessage.Rejected] = []
        for d in services {
            if acceptedNames.contains(d.name) {
                accepted.append(d.name)
            } else if let r = reasons[d.name] {
                rejected.append(r)
            } else {
                rejected.append(.init(name: d.name, reason: "type \"\(d.type)\" is not supported by this gateway"))
            }
        }
        return (accepted, rejected)
    }

    /// Private services need the grant's `allow_services`; a tcp service among them has no
    /// port, a network service has nothing but its name here.
    private static func registerPrivate(
        _ s: inout State, _ id: ConnectionID, grant: GatewayConfig.AgentGrant, services: [ServiceDeclaration]
    ) -> (accepted: [String], rejected: [ControlMessage.Rejected]) {
        var accepted: [String] = []
        var rejected: [ControlMessage.Rejected] = []
        var seen = Set<String>()
        // A new declaration replaces the connection's previous one.
        removePrivate(&s, connection: id)
        for d in services {
            guard seen.insert(d.name).inserted else {
                rejected.append(.init(name: d.name, reason: "service \"\(d.name)\" is declared twice"))
                continue
            }
            guard d.type == "tcp" || d.type == "network" else {
                rejected.append(.init(name: d.name, reason: "only tcp and network services can be private"))
                continue
            }
            guard d.remotePort == nil, d.hosts.isEmpty else {
                rejected.append(.init(name: d.name, reason: "a private service has no remote_port or hosts"))
                continue
            }
            guard grant.allowServices.contains(d.name) else {
                rejected.append(.init(name: d.name, reason: "private service \"\(d.name)\" is not in allow_services of agent \"\(grant.name)\""))
                continue
            }
            s.privateRoutes[d.name, default: []].append(PrivateEntry(connection: id, agent: grant.name, type: d.type))
            accepted.append(d.name)
        }
        return (accepted, rejected)
    }

    private static func removePrivate(_ s: inout State, connection id: ConnectionID) {
        for (name, entries) in s.privateRoutes where entries.contains(where: { $0.connection == id }) {
            let left = entries.filter { $0.connection != id }
            s.privateRoutes[name] = left.isEmpty ? nil : left
        }
    }

    /// The least loaded live connection serving the private service `name`, preferring one
    /// on `loop`, with the service's type; counts the new stream against it.
    func pickPrivate(service name: String, preferring loop: EventLoop) -> (route: Route, type: String)? {
        state.withLockedValue { s in
            let best = StreamBalancer.pick(
                s.privateRoutes[name] ?? [],
                load: { e in s.load(of: e.connection) },
                preferred: { e in s.isOn(loop, e.connection) })
            guard let best, let route = s.take(best.connection, service: name) else { return nil }
            return (route, best.type)
        }
    }

    /// Private services and the agents serving them, for the control socket.
    var privateRoutes: [String: [PrivateEntry]] {
        state.withLockedValue { $0.privateRoutes }
    }

    /// The least loaded live connection serving the best HTTP route for `host` and `path`;
    /// counts the new stream against it. `.noRoute` when no service claims the request and
    /// no agent may; `.noLiveAgent` when the claiming connections are all draining or
    /// excluded, or when the host is in some agent's `allow_hosts` but nothing serves it now.
    /// `agent`: only that agent's connections (a retry after its policies were checked).
    func pick(
        host: String, path: String, preferring loop: EventLoop, excluding: Set<ConnectionID> = [], agent: String? = nil
    ) -> HTTPPick {
        state.withLockedValue { s in
            var entries = s.httpRoutes.entries(host: host, path: path)
            if let agent { entries = entries.filter { $0.agent == agent } }
            guard let first = entries.first else {
                // A host some agent may claim is only missing its agent: worth a retry.
                let name = HostPattern.normalize(host)
                return s.grantedHosts.contains { $0.matches(name) } ? .noLiveAgent(service: nil) : .noRoute
            }
            let best = StreamBalancer.pick(
                excluding.isEmpty ? entries : entries.filter { !excluding.contains($0.connection) },
                load: { e in s.load(of: e.connection) },
                preferred: { e in s.isOn(loop, e.connection) }, slack: Self.sameLoopSlack)
            guard let best, let route = s.take(best.connection, service: best.service) else {
                return .noLiveAgent(service: first.service)
            }
            return .route(route)
        }
    }

    /// Streams a same-loop connection may carry beyond the least loaded one and still get
    /// an HTTP request: a hop between loops costs more than that imbalance.
    static let sameLoopSlack = 32

    enum HTTPPick: Sendable {
        case route(Route)
        case noRoute
        case noLiveAgent(service: String?)
    }

    /// The least loaded live connection serving `port`, preferring one on `loop`; counts the
    /// new stream against it. `agent`: only that agent's connections.
    func pick(
        port: Int, transport: PortTransport = .tcp, preferring loop: EventLoop, excluding: Set<ConnectionID> = [],
        agent: String? = nil
    ) -> Route? {
        state.withLockedValue { s in
            let table = transport == .tcp ? s.routes : s.udpRoutes
            let entries = table.entries(port: port).filter {
                !excluding.contains($0.connection) && (agent == nil || $0.agent == agent)
            }
            let best = StreamBalancer.pick(
                entries,
                load: { e in s.load(of: e.connection) },
                preferred: { e in s.isOn(loop, e.connection) })
            guard let best else { return nil }
            return s.take(best.connection, service: best.service)
        }
    }

    /// Whether some live (not draining) connection serves `port`.
    func serves(port: Int, transport: PortTransport = .tcp) -> Bool {
        state.withLockedValue { s in
            (transport == .tcp ? s.routes : s.udpRoutes).entries(port: port).contains { s.connections[$0.connection]?.draining == false }
        }
    }

    /// Every agent granted host names has at least one connection serving HTTP routes.
    var everyHostGrantServed: Bool {
        state.withLockedValue { s in
            let serving = Set(s.httpRoutes.all.compactMap { e in s.connections[e.connection]?.agent })
            return s.grants.values.allSatisfy { $0.allowHosts.isEmpty || serving.contains($0.name) }
        }
    }

    func streamEnded(_ id: ConnectionID) {
        state.withLockedValue { s in
            if let n = s.connections[id]?.streams, n > 0 { s.connections[id]?.streams = n - 1 }
        }
    }

    // MARK: views for the control socket

    var connections: [Connection] {
        state.withLockedValue { s in s.connections.keys.sorted().map { s.connections[$0]! } }
    }

    var routes: [Int: [TCPRouteTable<ConnectionID>.Entry]] {
        state.withLockedValue { $0.routes.ports }
    }

    var udpRoutes: [Int: [TCPRouteTable<ConnectionID>.Entry]] {
        state.withLockedValue { $0.udpRoutes.ports }
    }

    var httpRoutes: [HTTPRouteTable<ConnectionID>.Entry] {
        state.withLockedValue { $0.httpRoutes.all }
    }
}
