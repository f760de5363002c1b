import ArgumentParser
import Protocol

/// `fastgwctl [--socket PATH | --agent | --visitor] [--json] COMMAND …` (DESIGN §4).
struct Fastgwctl: ParsableCommand {
    static let gatewaySocket = "/run/fastgw/gateway.sock"
    static let agentSocket = "/run/fastgw/agent.sock"
    static let visitorSocket = "/run/fastgw/visitor.sock"

    static let configuration = CommandConfiguration(
        commandName: "fastgwctl",
        abstract: "Control a running fastgw gateway or agent through its control socket.",
        discussion: """
            Commands (both daemons): \(names(.gateway).filter { agentNames.contains($0) }.joined(separator: ", ")).
            Gateway only: agents, routes, policies, certificates. Agent only: services, connections. Visitor only: forwards, connections.
            Exit status: 0 OK, 1 the daemon answered ERR, 2 usage error, 3 cannot reach the socket.
            """,
        version: FastgwVersion.current)

    @Option(name: .shortAndLong, help: ArgumentHelp("Control socket path.", valueName: "path"), completion: .file())
    var socket: String?

    @Flag(help: "Talk to the agent (\(agentSocket)) instead of the gateway (\(gatewaySocket)).")
    var agent = false

    @Flag(help: "Talk to the visitor (\(visitorSocket)).")
    var visitor = false

    @Flag(help: "Ask for JSON output.")
    var json = false

    @Option(help: ArgumentHelp("Seconds to wait for the answer; 0 waits for ever (the default for reload and drain, else 10).",
                               valueName: "seconds"))
    var timeout: Int?

    @Argument(help: ArgumentHelp("The command to run.", valueName: "command"), completion: .list(allNames))
    var command: String

    @Argument(help: ArgumentHelp("Arguments of the command (drain [seconds], log-level <level>, stats [prometheus]).",
                                 valueName: "argument"))
    var arguments: [String] = []

    static func names(_ role: ControlRole) -> [String] { ControlCommand.catalog(role: role).map(\.name) }
    static let agentNames = names(.agent)
    static let allNames = Array(Set(names(.gateway) + names(.agent) + names(.visitor))).sorted()

    func validate() throws {
        if [socket != nil, agent, visitor].filter({ $0 }).count > 1 {
            throw ValidationError("--socket, --agent and --visitor cannot be used together")
        }
        let known = socket != nil ? Self.allNames : Self.names(visitor ? .visitor : agent ? .agent : .gateway)
        guard known.contains(command.lowercased()) else {
            if Self.allNames.contains(command.lowercased()) {
                throw ValidationError("\"\(command)\" is a command of the \(agent ? "gateway" : "agent")\(agent ? "" : " (add --agent)")")
            }
            throw ValidationError("unknown command \"\(command)\"; commands: \(known.joined(separator: ", "))")
        }
        if let timeout, timeout < 0 { throw ValidationError("--timeout must be 0 or more") }
    }

    func run() throws {
        let path = socket ?? (visitor ? Self.visitorSocket : agent ? Self.agentSocket : Self.gatewaySocket)
        var words = [command] + arguments
        if json { words.append("json") }
        let waitsLong = ["reload", "drain"].contains(command.lowercased())
        let seconds = timeout ?? (waitsLong ? 0 : 10)
        let client: ControlClient
        do {
            client = try ControlClient(path: path, timeoutSeconds: seconds)
        } catch {
            Output.error("fastgwctl: \(error)")
            throw ExitCode(3)
        }
        let reply: ControlReply
        do {
            reply = try client.request(words.joined(separator: " "))
        } catch {
            Output.error("fastgwctl: \(path): \(error)")
            throw ExitCode(3)
        }
        switch reply {
        case .ok(let body):
            Output.write(body)
        case .error(let e):
            Output.error("fastgwctl: \(command): \(e.message) (\(e.code))")
            throw ExitCode(1)
        }
    }
}
