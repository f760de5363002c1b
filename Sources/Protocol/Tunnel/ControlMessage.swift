/// Messages on the control stream, newline-delimited JSON (DESIGN §2.2).
public enum ControlMessage: Equatable, Sendable {
    case register([ServiceDeclaration])
    case registered(accepted: [String], rejected: [Rejected])
    case draining

    public struct Rejected: Equatable, Sendable {
        public var name: String
        public var reason: String

        public init(name: String, reason: String) {
            self.name = name
            self.reason = reason
        }
    }

    /// One JSON object followed by `\n`.
    public func encoded() -> [UInt8] {
        let json: JSON
        switch self {
        case .register(let services):
            json = .object(["type": .string("register"), "services": .array(services.map(\.json))])
        case .registered(let accepted, let rejected):
            json = .object([
                "type": .string("registered"),
                "accepted": .array(accepted.map(JSON.string)),
                "rejected": .array(rejected.map { .object(["name": .string($0.name), "reason": .string($0.reason)]) }),
            ])
        case .draining:
            json = .object(["type": .string("draining")])
        }
        return Array(json.serialized().utf8) + [10]
    }

    public static func decode(_ line: some Collection<UInt8>) throws(ControlMessageError) -> ControlMessage {
        guard let json = try? JSON.parse(line), let type = json["type"]?.string else {
            throw ControlMessageError("not a JSON control message")
        }
        switch type {
        case "register":
            var services: [ServiceDeclaration] = []
            for item in json["services"]?.array ?? [] {
                guard let s = ServiceDeclaration(json: item) else { throw ControlMessageError("malformed service declaration") }
                services.append(s)
            }
            return .register(services)
        case "registered":
            let accepted = (json["accepted"]?.array ?? []).compactMap(\.string)
            let rejected = (json["rejected"]?.array ?? []).compactMap { r -> Rejected? in
                guard let n = r["name"]?.string else { return nil }
                return Rejected(name: n, reason: r["reason"]?.string ?? "")
            }
            return .registered(accepted: accepted, rejected: rejected)
        case "draining":
            return .draining
        default:
            throw ControlMessageError("unknown control message type \"\(type)\"")
        }
    }
}

public struct ControlMessageError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// A service as an agent declares it to the gateway.
public struct ServiceDeclaration: Equatable, Sendable {
    public var name: String
    public var type: String
    public var remotePort: Int?
    /// HTTP services: the host names (exact or `*.suffix`) and path prefix they claim.
    public var hosts: [String]
    public var pathPrefix: String?
    /// `expose = "private"` (tcp and network services): reached by visitors only. A gateway
    /// that does not know the field refuses such a tcp service for its missing remote_port.
    public var isPrivate: Bool

    public init(name: String, type: String, remotePort: Int?, hosts: [String] = [], pathPrefix: String? = nil, isPrivate: Bool = false) {
        self.name = name
        self.type = type
        self.remotePort = remotePort
        self.hosts = hosts
        self.pathPrefix = pathPrefix
        self.isPrivate = isPrivate
    }

    var json: JSON {
        var o: [String: JSON] = ["name": .string(name), "type": .string(type)]
        if let remotePort { o["remote_port"] = .number(Double(remotePort)) }
        if !hosts.isEmpty { o["hosts"] = .array(hosts.map { .string($0) }) }
        if let pathPrefix { o["path_prefix"] = .string(pathPrefix) }
        if isPrivate { o["expose"] = .string("private") }
        return .object(o)
    }

    init?(json: JSON) {
        guard let name = json["name"]?.string, let type = json["type"]?.string else { return nil }
        let port = json["remote_port"]
        if port != nil && port?.int == nil { return nil }
        let hosts = json["hosts"]?.array?.compactMap(\.string) ?? []
        if let h = json["hosts"], h.array == nil || h.array?.count != hosts.count { return nil }
        let prefix = json["path_prefix"]
        if prefix != nil && prefix?.string == nil { return nil }
        let expose = json["expose"]
        if expose != nil && expose?.string == nil { return nil }
        self.init(name: name, type: type, remotePort: port?.int, hosts: hosts, pathPrefix: prefix?.string, isPrivate: expose?.string == "private")
    }

    public init(_ service: AgentConfig.Service) {
        self.init(name: service.name, type: service.kind.rawValue, remotePort: service.remotePort,
                  hosts: service.hosts, pathPrefix: service.pathPrefix, isPrivate: service.isPrivate)
    }
}

/// Splits a byte stream into `\n`-terminated lines, refusing lines over `limit`.
public struct LineFramer: Sendable {
    public let limit: Int
    private var pending: [UInt8] = []

    public init(limit: Int = 1 << 20) {
        self.limit = limit
    }

    public struct Overflow: Error {}

    public mutating func feed(_ bytes: some Collection<UInt8>) throws(Overflow) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        for b in bytes {
            if b == 10 {
                if pending.last == 13 { pending.removeLast() }
                if !pending.isEmpty { lines.append(pending) }
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.append(b)
                if pending.count > limit { throw Overflow() }
            }
        }
        return lines
    }
}
