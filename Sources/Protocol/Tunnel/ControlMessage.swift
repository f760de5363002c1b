import Foundation

/// Messages on the control stream, newline-delimited JSON (DESIGN §2.2).
public enum ControlMessage: Equatable, Sendable {
    case register([ServiceDeclaration])
    case registered(accepted: [String], rejected: [Rejected])
    case draining

    public struct Rejected: Codable, Equatable, Sendable {
        public var name: String
        public var reason: String

        public init(name: String, reason: String) {
            self.name = name
            self.reason = reason
        }
    }

    private struct Wire: Codable {
        var type: String
        var services: [ServiceDeclaration]?
        var accepted: [String]?
        var rejected: [Rejected]?
    }

    /// One JSON object followed by `\n`.
    public func encoded() -> [UInt8] {
        let wire: Wire
        switch self {
        case .register(let s): wire = Wire(type: "register", services: s)
        case .registered(let a, let r): wire = Wire(type: "registered", accepted: a, rejected: r)
        case .draining: wire = Wire(type: "draining")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding these plain structs cannot fail.
        return Array((try? encoder.encode(wire)) ?? Data()) + [10]
    }

    public static func decode(_ line: some Collection<UInt8>) throws(ControlMessageError) -> ControlMessage {
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(line))
        } catch {
            throw ControlMessageError("not a JSON control message")
        }
        switch wire.type {
        case "register": return .register(wire.services ?? [])
        case "registered": return .registered(accepted: wire.accepted ?? [], rejected: wire.rejected ?? [])
        case "draining": return .draining
        default: throw ControlMessageError("unknown control message type \"\(wire.type)\"")
        }
    }
}

public struct ControlMessageError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// A service as an agent declares it to the gateway.
public struct ServiceDeclaration: Codable, Equatable, Sendable {
    public var name: String
    public var type: String
    public var remotePort: Int?

    public init(name: String, type: String, remotePort: Int?) {
        self.name = name
        self.type = type
        self.remotePort = remotePort
    }

    enum CodingKeys: String, CodingKey {
        case name, type
        case remotePort = "remote_port"
    }

    public init(_ service: AgentConfig.Service) {
        self.init(name: service.name, type: service.kind.rawValue, remotePort: service.remotePort)
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
