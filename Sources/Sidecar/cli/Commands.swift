import ArgumentParser
import Dispatch
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
            let server = try GatewayServer(config: config, logger: logger, group: group)
            let channels = try server.start()
            logger.notice("gateway ready", metadata: ["agents": "\(config.agents.count)", "tcp_ports": "\(config.tcpPorts.count)"])
            Daemon.waitForTermination(group: group, logger: logger)
            for c in channels { try? c.close().wait() }
            try? group.syncShutdownGracefully()
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
            let runner = try AgentRunner(config: config, logger: logger, group: group)
            runner.start()
            logger.notice("agent started", metadata: [
                "agent": "\(config.name)", "gateways": "\(config.gateways.count)", "services": "\(config.services.count)",
            ])
            Daemon.waitForTermination(group: group, logger: logger)
            try? group.syncShutdownGracefully()
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
        LoggingSystem.bootstrap { label in LogfmtHandler(label: label, level: level) }
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

    /// Blocks until SIGTERM or SIGINT.
    static func waitForTermination(group: EventLoopGroup, logger: Logger) {
        let done = group.next().makePromise(of: Int32.self)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { done.succeed(sig) }
            source.resume()
            sources.append(source)
        }
        let sig = (try? done.futureResult.wait()) ?? SIGTERM
        logger.notice("stopping", metadata: ["signal": "\(sig == SIGTERM ? "SIGTERM" : "SIGINT")"])
        sources.forEach { $0.cancel() }
    }
}
