import Logging
import NIOCore
import Protocol

/// The commands both daemons answer the same way.
enum CommonCommands {
    static func answer(_ request: ControlRequest, role: ControlRole, logger: Logger) -> ControlOutcome? {
        let json = request.format == .json
        switch request.command {
        case .help:
            let specs = ControlCommand.catalog(role: role)
            if json {
                return .ok(JSON.object(["commands": .array(specs.map {
                    .object(["name": .string($0.name), "arguments": .string($0.arguments), "summary": .string($0.summary)])
                })]).serialized() + "\n")
            }
            var table = TextTable(["COMMAND", "SUMMARY"])
            for s in specs { table.add([s.arguments.isEmpty ? s.name : "\(s.name) \(s.arguments)", s.summary]) }
            return .ok(table.render() + "Add \"json\" to any command for JSON output; stats also takes \"prometheus\".\n")
        case .version:
            return .ok(json
                ? JSON.object(["version": .string(FastgwVersion.current), "role": .string(role.rawValue)]).serialized() + "\n"
                : "fastgw \(FastgwVersion.current) (\(role.rawValue))\n")
        case .ping:
            return .ok(json ? "{\"pong\":true}\n" : "pong\n")
        case .logLevel(let name):
            guard let level = Logger.Level(rawValue: name) else { return .error(.badRequest("unknown log level \(name)")) }
            let old = RuntimeLogLevel.current
            RuntimeLogLevel.current = level
            logger.notice("log level changed", metadata: ["from": "\(old)", "to": "\(level)"])
            return .ok(json
                ? JSON.object(["log_level": .string(level.rawValue), "previous": .string(old.rawValue)]).serialized() + "\n"
                : "log level \(level.rawValue) (was \(old.rawValue))\n")
        default:
            return nil
        }
    }

    /// `reload` and `drain`, which both daemons run through `ManagedDaemon`. A drain's answer
    /// holds the process until it has been written.
    static func manage(_ request: ControlRequest, daemon: ManagedDaemon, on loop: EventLoop) -> EventLoopFuture<ControlOutcome>? {
        let json = request.format == .json
        switch request.command {
        case .reload:
            return daemon.reload().map { summary in
                .ok(json ? JSON.object(["reloaded": .bool(true), "summary": .string(summary)]).serialized() + "\n" : summary + "\n")
            }
        case .drain(let seconds):
            guard let done = daemon.drain(timeout: seconds.map { .seconds(Int64($0)) }) else {
                return loop.makeSucceededFuture(.error(.conflict("already draining")))
            }
            let lifecycle = daemon.lifecycle
            lifecycle.hold()
            return done.map { report in
                ControlOutcome(.ok(json ? report.json.serialized() + "\n" : report.text), afterWrite: { lifecycle.release() })
            }
        default:
            return nil
        }
    }

    static func ms(_ t: TimeAmount) -> Int { Int(t.nanoseconds / 1_000_000) }
}
