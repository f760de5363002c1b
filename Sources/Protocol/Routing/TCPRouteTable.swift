/// Which live agent connections serve which public TCP port — or, for `transport` udp,
/// which public UDP port (gateway side, I/O-free).
///
/// A port belongs to one service name; several connections — of one agent or of several
/// agents granted that port — may serve it, and new streams go to the least loaded.
public struct TCPRouteTable<ConnectionID: Hashable & Sendable>: Sendable {
    public struct Entry: Equatable, Sendable {
        public var agent: String
        public var service: String
        public var connection: ConnectionID
    }

    private var byPort: [Int: [Entry]] = [:]
    /// Which services and grant this table takes: tcp (`allow_ports`) or udp (`allow_udp_ports`).
    public let transport: PortTransport

    public init(transport: PortTransport = .tcp) {
        self.transport = transport
    }

    /// Authorises `services` for one connection against its agent's grant and records the
    /// accepted ones, replacing whatever that connection declared before.
    public mutating func register(
        connection: ConnectionID, grant: GatewayConfig.AgentGrant, services: [ServiceDeclaration]
    ) -> (accepted: [String], rejected: [ControlMessage.Rejected]) {
        remove(connection: connection)
        var accepted: [String] = []
        var rejected: [ControlMessage.Rejected] = []
        var claimed = Set<Int>()
        for service in services {
            switch authorize(service, grant: grant, claimed: claimed) {
            case .success(let port):
                claimed.insert(port)
                byPort[port, default: []].append(Entry(agent: grant.name, service: service.name, connection: connection))
                accepted.append(service.name)
            case .failure(let reason):
                rejected.append(.init(name: service.name, reason: reason.reason))
            }
        }
        return (accepted, rejected)
    }

    private func authorize(
        _ s: ServiceDeclaration, grant: GatewayConfig.AgentGrant, claimed: Set<Int>
    ) -> Result<Int, TunnelHandshake.Rejection> {
        func no(_ r: String) -> Result<Int, TunnelHandshake.Rejection> { .failure(.init(status: 403, reason: r)) }
        guard s.type == transport.rawValue else { return no("type \"\(s.type)\" is not supported by this gateway") }
        guard let port = s.remotePort else { return no("\(transport.rawValue) service needs remote_port") }
        let (granted, key) = transport == .tcp ? (grant.allowPorts, "allow_ports") : (grant.allowUDPPorts, "allow_udp_ports")
        guard granted.contains(port) else {
            return no("remote_port \(port) is not in \(key) of agent \"\(grant.name)\"")
        }
        if claimed.contains(port) { return no("remote_port \(port) is declared twice") }
        if let owner = byPort[port]?.first, owner.service != s.name {
            return no("remote_port \(port) is already served as service \"\(owner.service)\" by agent \"\(owner.agent)\"")
        }
        return .success(port)
    }

    public mutating func remove(connection: ConnectionID) {
        for (port, entries) in byPort {
            let kept = entries.filter { $0.connection != connection }
            byPort[port] = kept.isEmpty ? nil : kept
        }
    }

    public func entries(port: Int) -> [Entry] {
        byPort[port] ?? []
    }

    public var ports: [Int: [Entry]] { byPort }
}

/// The transport of a public port: a TCP port and a UDP port of one number are two routes.
public enum PortTransport: String, Sendable {
    case tcp, udp
}

public enum StreamBalancer {
    /// The candidate with the fewest active streams; ties go to the preferred one (same event
    /// loop), then to the earliest. With `slack`, a preferred candidate wins while it carries
    /// at most that many streams more than the least loaded one (short HTTP requests gain more
    /// from staying on their loop than from perfect balance).
    public static func pick<C>(
        _ candidates: [C], load: (C) -> Int?, preferred: (C) -> Bool, slack: Int = 0
    ) -> C? {
        var best: (C, Int)?
        var bestPreferred: (C, Int)?
        for c in candidates {
            guard let l = load(c) else { continue }  // nil: not usable (draining, closed)
            if best == nil || l < best!.1 { best = (c, l) }
            if preferred(c), bestPreferred == nil || l < bestPreferred!.1 { bestPreferred = (c, l) }
        }
        if let p = bestPreferred, let b = best, p.1 <= b.1 + slack { return p.0 }
        return best?.0
    }
}
