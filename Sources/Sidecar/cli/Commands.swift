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
        subcommands: [Gateway.self, Agent.self, Visitor.self, Check.self, Token.self])
}

struct CommonOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Configuration file (TOML).")
    var config: String

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Where logs go: auto (the journal when stderr is connected to it), journal, stderr.")
    var logTarget: LogTarget = .auto
}

enum LogTarget: String, ExpressibleByArgument, CaseIterable {
    case auto, journal, stderr
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension Fastgw {
    struct Gateway: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the public gateway.")
        @OptionGroup var options: CommonOptions

        func run() throws {
            SignalWaiter.holdSignals()
            let logger = Daemon.bootstrapLogging(role: "gateway", options: options)
            guard case .gateway(let config) = try Daemon.load(options.config, logger: logger) else {
                throw Daemon.wrongRole(options.config, expected: "gateway")
            }
            try Libsystemd.checkEnvironment()
            let activation = try SocketActivation.fromEnvironment()
            let plan = try activation.startupPlan(GatewayServer.wanted(for: config))
            let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            let lifecycle = Lifecycle(loop: group.next(), logger: logger)
            let server = try GatewayServer(
                config: config, logger: logger, group: group, lifecycle: lifecycle, activation: activation)
            try server.start(plan: plan)
            let control = try ControlServer.bind(
                path: config.controlSocket, inherited: plan.claims["control"], group: group,
                responder: GatewayControl(server: server), logger: logger)
            // Open until the event loops stop (Daemon.serve closes every channel then).
            _ = try config.metrics.map {
                try MetricsServer.bind($0, inherited: plan.claims["metrics"], group: group, source: server, logger: logger)
            }
            // Password checks still queued complete on the loops: their threads stop first.
            let code = Daemon.serve(
                server, role: "gateway", control: control, group: group, logger: logger, stopping: server.context.passwords.shutdown
            ) {
                logger.notice("gateway ready", metadata: [
                    "agents": "\(config.agents.count)", "tcp_ports": "\(config.tcpPorts.count)",
                    "inherited_sockets": "\(activation.inherited.count)",
                ])
            }
            if code != 0 { throw ExitCode(code) }
        }
    }

    struct Agent: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run an agent next to private services.")
        @OptionGroup var options: CommonOptions

        func run() throws {
            SignalWaiter.holdSignals()
            let logger = Daemon.bootstrapLogging(role: "agent", options: options)
            guard case .agent(let config) = try Daemon.load(options.config, logger: logger) else {
                throw Daemon.wrongRole(options.config, expected: "agent")
            }
            try Libsystemd.checkEnvironment()
            // The agent listens only on its control socket.
            let activation = try SocketActivation.fromEnvironment()
            let plan = try activation.startupPlan([SocketActivation.wanted(name: "control", unixPath: config.controlSocket)]
                + (config.metrics.map { [SocketActivation.wanted(name: "metrics", address: $0.listen)] } ?? []))
            let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            let lifecycle = Lifecycle(loop: group.next(), logger: logger)
            let runner = try AgentRunner(config: config, logger: logger, group: group, lifecycle: lifecycle)
            let control = try ControlServer.bind(
                path: config.controlSocket, inherited: plan.claims["control"], group: group,
                responder: AgentControl(runner: runner), logger: logger)
            // Open until the event loops stop (Daemon.serve closes every channel then).
            _ = try config.metrics.map {
                try MetricsServer.bind($0, inherited: plan.claims["metrics"], group: group, source: runner, logger: logger)
            }
            let code = Daemon.serve(runner, role: "agent", control: control, group: group, logger: logger) {
                runner.start()
                logger.notice("agent started", metadata: [
                    "agent": "\(config.name)", "gateways": "\(config.gateways.count)", "services": "\(config.services.count)",
                ])
            }
            if code != 0 { throw ExitCode(code) }
        }
    }

    struct Visitor: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a visitor: local forwards and a SOCKS5 proxy into private services through a gateway.")
        @OptionGroup var options: CommonOptions

        func run() throws {
            SignalWaiter.holdSignals()
            let logger = Daemon.bootstrapLogging(role: "visitor", options: options)
            guard case .visitor(let config) = try Daemon.load(options.config, logger: logger) else {
                throw Daemon.wrongRole(options.config, expected: "visitor")
            }
            try Libsystemd.checkEnvironment()
            let activation = try SocketActivation.fromEnvironment()
            let plan = try activation.startupPlan(VisitorRunner.wanted(for: config))
            let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            let lifecycle = Lifecycle(loop: group.next(), logger: logger)
            let runner = try VisitorRunner(config: config, logger: logger, group: group, lifecycle: lifecycle, activation: activation)
            try runner.bindListeners(plan: plan)
            let control = try ControlServer.bind(
                path: config.controlSocket, inherited: plan.claims["control"], group: group,
                responder: VisitorControl(runner: runner), logger: logger)
            let code = Daemon.serve(runner, role: "visitor", control: control, group: group, logger: logger) {
                runner.start()
                logger.notice("visitor started", metadata: [
                    "visitor": "\(config.name)", "gateways": "\(config.connection.gateways.count)",
                    "forwards": "\(config.forwards.count)", "socks5": "\(config.socks5.map { "\($0)" } ?? "-")",
                ])
            }
            if code != 0 { throw ExitCode(code) }
        }
    }

    struct Check: ParsableCommand {
        /// Which certificates `[acme]` will obtain, as the gateway will plan them.
        static func printAcmePlan(_ c: GatewayConfig, file: String) {
            let covered = (try? PublicCertificates.build(c).get())?.acmeCovered ?? c.certificates.flatMap(\.hosts)
            let plan = AcmeHosts.plan(c, covered: covered)
            if !c.listeners.contains(where: { $0.kind == .https }) {
                Daemon.printError("\(file): warning: [acme] is set but no listener has protocol \"https\": no certificate is obtained")
            }
            print("acme: \(plan.certificates.count) certificates: \(plan.certificates.map { $0.joined(separator: "+") }.joined(separator: ", "))")
            for note in plan.notes { Daemon.printError("\(file): warning: \(note)") }
        }

        static let configuration = CommandConfiguration(
            abstract: "Validate a gateway, agent or visitor configuration file without starting (like nginx -t).")
        @Option(name: .shortAndLong, help: "Configuration file (TOML).")
        var config: String

        func run() throws {
            // Usually run outside the unit: without $CREDENTIALS_DIRECTORY, credentials are
            // noted as not checked and the exit status speaks for the rest of the file.
            switch ConfigLoading.load(path: config, credentials: CredentialFiles.lookup(whenUnset: .skip)) {
            case .success(.gateway(let c)):
                print("\(config): gateway configuration OK (\(c.agents.count) agents, \(c.tcpPorts.count) TCP ports\(Self.unchecked(c.credentials)))")
                for note in CredentialFiles.notes(c.credentials, file: config) { Daemon.printError(note) }
                for warning in Self.trustWarnings(c, file: config) { Daemon.printError(warning) }
                for warning in c.authenticatedTCPWarnings { Daemon.printError("\(config): warning: \(warning)") }
                if c.acme != nil { Self.printAcmePlan(c, file: config) }
            case .success(.agent(let c)):
                print("\(config): agent configuration OK (\(c.services.count) services, \(c.gateways.count) gateways\(Self.unchecked(c.credentials)))")
                for note in CredentialFiles.notes(c.credentials, file: config) { Daemon.printError(note) }
            case .success(.visitor(let v)):
                let c = v.connection
                print("\(config): visitor configuration OK (\(v.forwards.count) forwards, socks5 \(v.socks5.map { "\($0)" } ?? "off"), \(c.gateways.count) gateways\(Self.unchecked(c.credentials)))")
                for note in CredentialFiles.notes(c.credentials, file: config) { Daemon.printError(note) }
            case .failure(let error):
                for d in error.diagnostics { Daemon.printError(d.description) }
                throw ExitCode(1)
            }
        }

        /// `[gateway] trusted_proxies` entries so broad (`CIDR.isBroad`) that much of the
        /// Internet may send PROXY headers and have its X-Forwarded-For believed: allowed, as
        /// a private network may need them, but worth a second look.
        private static func trustWarnings(_ c: GatewayConfig, file: String) -> [String] {
            let at = c.sourceLines["gateway.trusted_proxies"].map { "\(file):\($0)" } ?? file
            return c.trustedProxies.blocks.filter(\.isBroad).map { block in
                "\(at): warning: [gateway] trusted_proxies entry \(block) is broader than /\(block.network.family == .v4 ? CIDR.broadIPv4Prefix : CIDR.broadIPv6Prefix): "
                    + "every address in it may send PROXY headers and have its X-Forwarded-For, Forwarded, X-Forwarded-Proto and -Host believed"
            }
        }

        private static func unchecked(_ credentials: [CredentialReference]) -> String {
            let n = credentials.filter { $0.path == nil }.count
            return n == 0 ? "" : "; \(n) credential\(n == 1 ? "" : "s") not checked"
        }
    }
}

enum Daemon {
    /// What both daemons do once their sockets are up: signals, watchdog, `start`, READY and
    /// STATUS; then wait for the end (a drain, or a second stop signal) and tidy up.
    /// `stopping` runs before the event loops stop (work that completes on them ends first).
    /// Returns the exit code.
    static func serve(
        _ daemon: some ManagedDaemon, role: String, control: ControlServer.Listening,
        group: MultiThreadedEventLoopGroup, logger: Logger, stopping: () -> Void = {}, start: () -> Void
    ) -> Int32 {
        daemon.lifecycle.installSignalHandlers(daemon: daemon, loop: group.next())
        let watchdog = Watchdog.start(group: group, logger: logger)
        start()
        daemon.notifier.ready()
        daemon.notifier.startStatusUpdates(on: group.next())
        let code = daemon.lifecycle.wait()
        watchdog?.stop()
        daemon.drainCoordinator.abandon()
        stopping()
        // Closing the group closes every listener and connection still open.
        control.close()
        try? group.syncShutdownGracefully()
        logger.notice("\(role) stopped")
        return code
    }

    static func bootstrapLogging(role: String, options: CommonOptions) -> Logger {
        RuntimeLogLevel.current = options.logLevel
        let wantsJournal = options.logTarget == .journal || (options.logTarget == .auto && JournalLogHandler.stderrIsJournal)
        let journal = wantsJournal ? journalFunctions() : nil
        LoggingSystem.bootstrap { label in
            if let journal { return JournalLogHandler(label: label, role: role, systemd: journal) }
            return LogfmtHandler(label: label)
        }
        ResourceLimits.raiseOpenFiles()
        return Logger(label: "fastgw-\(role)")
    }

    /// libsystemd for the journal handler; without it the daemon logs to stderr and says why.
    private static func journalFunctions() -> Libsystemd.Functions? {
        do {
            return try Libsystemd.functions()
        } catch {
            printError("\(error.description); logging to stderr instead of the journal")
            return nil
        }
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
