/// One request on a control socket (DESIGN §4): `command [arg …]` on one line. Parsing is
/// pure so that both daemons and their tests share it.
public struct ControlRequest: Equatable, Sendable {
    public var command: ControlCommand
    public var format: OutputFormat

    public init(command: ControlCommand, format: OutputFormat = .text) {
        self.command = command
        self.format = format
    }

    /// Longest request line a daemon accepts, terminator excluded.
    public static let maxLineBytes = 4096

    /// Parses one line (without its LF; a trailing CR is ignored). Returns nil for a blank
    /// line, which gets no answer, so typing Enter at a `socat` prompt is harmless.
    public static func parse(_ line: some Collection<UInt8>, role: ControlRole) -> Result<ControlRequest?, ControlError> {
        var bytes = Array(line)
        if bytes.last == 13 { bytes.removeLast() }
        guard bytes.count <= maxLineBytes else {
            return .failure(.badRequest("request line longer than \(maxLineBytes) bytes"))
        }
        guard let text = String(validating: bytes, as: UTF8.self),
              text.unicodeScalars.allSatisfy({ $0 == "\t" || ($0.value >= 0x20 && $0.value != 0x7f) }) else {
            return .failure(.badRequest("request is not a line of printable UTF-8 text"))
        }
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard !words.isEmpty else { return .success(nil) }
        let name = words.removeFirst().lowercased()
        guard let spec = ControlCommand.catalog(role: role).first(where: { $0.name == name }) else {
            if ControlCommand.catalog(role: role.other).contains(where: { $0.name == name }) {
                return .failure(.notFound("command \"\(name)\" exists only on the \(role.other.rawValue)"))
            }
            return .failure(.notFound("unknown command \"\(name)\" (try help)"))
        }
        var format = OutputFormat.text
        if let last = words.last, let f = OutputFormat(rawValue: last.lowercased()), spec.formats.contains(f) {
            format = f
            words.removeLast()
        }
        return spec.build(words).map { ControlRequest(command: $0, format: format) }.map(Optional.some)
    }
}

public enum ControlRole: String, Sendable {
    case gateway, agent, visitor

    var other: ControlRole { self == .gateway ? .agent : .gateway }
}

public enum OutputFormat: String, Sendable, CaseIterable {
    case text, json, prometheus
}

public enum ControlCommand: Equatable, Sendable {
    case help, version, ping, status, stats, reload, quit
    case drain(seconds: Int?)
    case logLevel(String)
    /// Gateway only.
    case agents, routes, policies, certificates
    /// Agent only (`connections` on the visitor too).
    case services, connections
    /// Visitor only.
    case forwards

    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// What `help` lists and `fastgwctl` completes: name, argument synopsis, one-line summary.
    public struct Spec: Sendable {
        public let name: String
        public let arguments: String
        public let summary: String
        public let formats: [OutputFormat]
        let build: @Sendable ([String]) -> Result<ControlCommand, ControlError>
    }

    public static func catalog(role: ControlRole) -> [Spec] {
        var specs = common
        switch role {
        case .gateway: specs += gatewayOnly
        case .agent: specs += agentOnly
        case .visitor: specs += visitorOnly
        }
        return specs
    }

    private static let tj: [OutputFormat] = [.text, .json]

    private static func plain(_ name: String, _ summary: String, _ c: ControlCommand) -> Spec {
        Spec(name: name, arguments: "", summary: summary, formats: tj) { args in
            args.isEmpty ? .success(c) : .failure(.badRequest("usage: \(name) [text|json]"))
        }
    }

    private static let common: [Spec] = [
        plain("help", "list the commands", .help),
        plain("version", "fastgw version", .version),
        plain("ping", "check that the daemon answers", .ping),
        plain("status", "one-line summary: role, uptime, connections, draining", .status),
        Spec(name: "stats", arguments: "", summary: "counters and gauges (text, json or prometheus)",
             formats: OutputFormat.allCases) { args in
            args.isEmpty ? .success(.stats) : .failure(.badRequest("usage: stats [text|json|prometheus]"))
        },
        plain("reload", "re-read and apply the configuration file, or keep the old one", .reload),
        Spec(name: "drain", arguments: "[seconds]",
             summary: "stop taking new work, finish what is in flight, exit (default drain_timeout)",
             formats: tj) { args in
            switch args.count {
            case 0: return .success(.drain(seconds: nil))
            case 1:
                guard let s = Int(args[0]), (1...86_400).contains(s) else {
                    return .failure(.badRequest("drain: seconds must be a whole number from 1 to 86400"))
                }
                return .success(.drain(seconds: s))
            default: return .failure(.badRequest("usage: drain [seconds] [text|json]"))
            }
        },
        Spec(name: "log-level", arguments: "<level>", summary: "change the log level until the next restart",
             formats: tj) { args in
            guard args.count == 1, logLevels.contains(args[0].lowercased()) else {
                return .failure(.badRequest("usage: log-level \(logLevels.joined(separator: "|"))"))
            }
            return .success(.logLevel(args[0].lowercased()))
        },
        plain("quit", "close this control connection", .quit),
    ]

    private static let gatewayOnly: [Spec] = [
        plain("agents", "connected agents: connections, carrier, address, RTT, streams, services", .agents),
        plain("routes", "public ports and the agent connections serving them", .routes),
        plain("policies", "access policies: rules, where each is attached, its counters", .policies),
        plain("certificates", "ACME certificates: hosts, issuer, expiry, next renewal, last error", .certificates),
    ]

    private static let visitorOnly: [Spec] = [
        plain("forwards", "local listeners (forwards, SOCKS5): service, connections, bytes, refusals", .forwards),
        plain("connections", "tunnel connections per gateway: state, RTT, last error, next retry", .connections),
    ]

    private static let agentOnly: [Spec] = [
        plain("services", "configured services and their registration on each gateway", .services),
        plain("connections", "tunnel connections per gateway: state, RTT, last error, next retry", .connections),
    ]
}

/// An `ERR <code> <message>` answer.
public struct ControlError: Error, Equatable, Sendable, CustomStringConvertible {
    public let code: Int
    public let message: String

    public init(code: Int, message: String) {
        self.code = code
        self.message = message
    }

    public static func badRequest(_ m: String) -> ControlError { ControlError(code: 400, message: m) }
    public static func notFound(_ m: String) -> ControlError { ControlError(code: 404, message: m) }
    public static func conflict(_ m: String) -> ControlError { ControlError(code: 409, message: m) }
    public static func invalidConfig(_ m: String) -> ControlError { ControlError(code: 422, message: m) }
    public static func `internal`(_ m: String) -> ControlError { ControlError(code: 500, message: m) }
    public static func draining(_ m: String) -> ControlError { ControlError(code: 503, message: m) }

    public var description: String { "\(code) \(message)" }
}
