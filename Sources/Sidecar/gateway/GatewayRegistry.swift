import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// Live tunnel connections and the TCP routes they serve, shared by every event loop of the
/// gateway. It is touched when connections, registrations and streams begin or end, never per
/// byte, so one lock is enough.
final class GatewayRegistry: Sendable {
    typealias ConnectionID = UInt64

    struct Connection: Sendable {
        let id: ConnectionID
        let agent: String
        let instance: String
        let remote: String
        let tunnel: LoopBoundRef<TunnelConnection>
        var streams = 0
        /// The agent sent GOAWAY: no new streams go here.
        var draining = false
    }

    /// A chosen route for one public TCP connection.
    struct Route: Sendable {
        let connection: ConnectionID
        let agent: String
        let service: String
        let tunnel: LoopBoundRef<TunnelConnection>
    }

    private struct State {
        var nextID: ConnectionID = 1
        var connections: [ConnectionID: Connection] = [:]
        var routes = TCPRouteTable<ConnectionID>()
        var grants: [String: GatewayConfig.AgentGrant] = [:]
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

    func add(agent: String, instance: String, remote: String, tunnel: LoopBoundRef<TunnelConnection>) -> ConnectionID {
        state.withLockedValue { s in
            let id = s.nextID
            s.nextID += 1
            s.connections[id] = Connection(id: id, agent: agent, instance: instance, remote: remote, tunnel: tunnel)
            return id
        }
    }

    func remove(_ id: ConnectionID) {
        state.withLockedValue { s in
            s.connections[id] = nil
            s.routes.remove(connection: id)
        }
    }

    func markDraining(_ id: ConnectionID) {
        state.withLockedValue { s in s.connections[id]?.draining = true }
    }

    func register(_ id: ConnectionID, services: [ServiceDeclaration]) -> (accepted: [String], rejected: [ControlMessage.Rejected]) {
        state.withLockedValue { s in
            guard let c = s.connections[id], let grant = s.grants[c.agent] else {
                return ([], services.map { .init(name: $0.name, reason: "agent is no longer configured") })
            }
            return s.routes.register(connection: id, grant: grant, services: services)
        }
    }

    /// The least loaded live connection serving `port`, preferring one on `loop`; counts the
    /// new stream against it.
    func pick(port: Int, preferring loop: EventLoop) -> Route? {
        state.withLockedValue { s in
            let entries = s.routes.entries(port: port)
            let best = StreamBalancer.pick(
                entries,
                load: { e in s.connections[e.connection].flatMap { $0.draining ? nil : $0.streams } },
                preferred: { e in s.connections[e.connection]?.tunnel.eventLoop === loop })
            guard let best, let c = s.connections[best.connection] else { return nil }
            s.connections[best.connection]?.streams += 1
            return Route(connection: c.id, agent: c.agent, service: best.service, tunnel: c.tunnel)
        }
    }

    func streamEnded(_ id: ConnectionID) {
        state.withLockedValue { s in
            if let n = s.connections[id]?.streams, n > 0 { s.connections[id]?.streams = n - 1 }
        }
    }
}
