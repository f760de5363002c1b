import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import Protocol

#if canImport(Glibc)
import Glibc
#endif

struct Fastgw: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fastgw",
        abstract: "Reverse-tunnel gateway: publish services on private hosts through a public gateway.",
        subcommands: [Gateway.self, Agent.self, Check.self])
}

struct CommonOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Configuration file (TOML).")
    var config: String

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension Fastgw {
    struct Gateway: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the public gateway.")
        @OptionGroup var options: CommonOptions

        func run() throws {
            let logger = Daemon.bootstrapLogging(label: "fastgw-gateway", level: options.logLevel)
            guard case .gateway(let config) = try Daemon.load(options.config, logger: logger) else {
                throw Daemon.wrongRole(options.config, expected: "gateway")
            }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            let lifecycle = Lifecycle(loop: group.next(), logger: logger)
            let server = try GatewayServer(config: config, logger: logger, group: group, lifecycle: lifecycle)
            try server.start()
            let control = try ControlServer.bind(
                path: config.controlSocket, group: group, responder: GatewayControl(server: server), logger: logger)
            lifecycle.installSignalHandlers(daemon: server, loop: group.next())
            server.notifier.ready()
            server.notifier.startStatusUpdates(on: group.next())
            logger.notice("gateway ready", metadata: ["agents": "\(config.agents.count)", "tcp_ports": "\(config.tcpPorts.count)"])
            let code = lifecycle.wait()
            server.context.drain.abandon()
            server.stopAccepting()
            try? control.close().wait()
            ControlServer.remove(path: config.controlSocket)
            try? group.syncShutdownGracefully()
            logger.notice("gateway stopped")
            if code != 0 { throw ExitCode(code) }
        }
    }

    struct Agent: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run an agent next to private services.")
        @OptionGroup var options: CommonOptions

        func run() throws {
            let logger = Daemon.bootstrapLogging(label: "fastgw-agent", level: options.logLevel)
            guard case .agent(let config) = try Daemon.load(options.config, logger: logger) else {
                throw Daemon.wrongRole(options.config, expected: "agent")
            }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            let lifecycle = Lifecycle(loop: group.next(), logger: logger)
            let runner = try AgentRunner(config: config, logger: logger, group: group, lifecycle: lifecycle)
            let control = try ControlServer.bind(
                path: config.controlSocket, group: group, responder: AgentControl(runner: runner), logger: logger)
            lifecycle.installSignalHandlers(daemon: runner, loop: group.next())
            runner.start()
            runner.notifier.ready()
            runner.notifier.startStatusUpdates(on: group.next())
            logger.notice("agent started", metadata: [
                "agent": "\(config.name)", "gateways": "\(config.gateways.count)", "services": "\(config.services.count)",
            ])
            let code = lifecycle.wait()
            runner.context.drain.abandon()
            try? control.close().wait()
            ControlServer.remove(path: config.controlSocket)
            try? group.syncShutdownGracefully()
            logger.notice("agent stopped")
            if code != 0 { throw ExitCode(code) }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a gateway or agent configuration file without starting (like nginx -t).")
        @Option(name: .shortAndLong, help: "Configuration file (TOML).")
        var config: String

        func run() throws {
            switch ConfigLoading.load(path: config) {
            case .success(.gateway(let c)):
                print("\(config): gateway configuration OK (\(c.agents.count) agents, \(c.tcpPorts.count) TCP ports)")
            case .success(.agent(let c)):
                print("\(config): agent configuration OK (\(c.services.count) services, \(c.gateways.count) gateways)")
            case .failure(let error):
                for d in error.diagnostics { Daemon.printError(d.description) }
                throw ExitCode(1)
            }
        }
    }
}

enum Daemon {
    static func bootstrapLogging(label: String, level: Logger.Level) -> Logger {
        RuntimeLogLevel.current = level
        LoggingSystem.bootstrap { label in LogfmtHandler(label: label) }
        ResourceLimits.raiseOpenFiles()
        return Logger(label: label)
    }

    static func load(_ path: String, logger: Logger) throws -> ConfigLoading.Loaded {
        switch ConfigLoading.load(path: path) {
        case .success(let loaded):
            return loaded
        case .failure(let error):
            for d in error.diagnostics { printError(d.description) }
            throw ExitCode(1)
        }
    }

    static func wrongRole(_ path: String, expected: String) -> Error {
        printError("\(path): not a \(expected) configuration")
        return ExitCode(1)
    }

    static func printError(_ line: String) {
        var bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
