import NIOCore
import Protocol

/// The agent's answers on its control socket (DESIGN §4).
struct AgentControl: ControlResponder {
    let runner: AgentRunner
    var role: ControlRole { .agent }

    private var context: AgentContext { runner.context }

    var daemon: any ManagedDaemon { runner }

    func respondToRoleCommand(_ request: ControlRequest, on loop: EventLoop) -> EventLoopFuture<ControlOutcome> {
        let json = request.format == .json
        switch request.command {
        case .status:
            return loop.makeSucceededFuture(.ok(status(json: json)))
        case .stats:
            return loop.makeSucceededFuture(.ok(context.stats.report(draining: context.isDraining).render(request.format)))
        case .services:
            return loop.makeSucceededFuture(.ok(services(json: json)))
        case .connections:
            return loop.makeSucceededFuture(.ok(Self.connections(context.slots.all, json: json)))
        default:
            return loop.makeSucceededFuture(.error(.notFound("not an agent command")))
        }
    }

    private func status(json: Bool) -> String {
        let slots = context.slots.all
        let connected = slots.filter { $0.state == .connected }.count
        let uptime = CommonCommands.ms(context.stats.uptime)
        let streams = context.stats.streamsActive.value
        let draining = context.isDraining
        let config = context.config
        if json {
            return JSON.object([
                "role": .string("agent"), "version": .string(FastgwVersion.current), "name": .string(config.name),
                "uptime_ms": .number(Double(uptime)), "connections": .number(Double(connected)),
                "slots": .number(Double(slots.count)), "gateways": .number(Double(config.gateways.count)),
                "streams": .number(Double(streams)), "services": .number(Double(config.services.count)),
                "draining": .bool(draining), "config": .string(config.file),
            ]).serialized() + "\n"
        }
        return "agent \(config.name) \(draining ? "draining" : "serving"), up \(DurationText.format(milliseconds: uptime)): "
            + "\(connected)/\(slots.count) tunnel connections to \(config.gateways.count) gateways, "
            + "\(config.services.count) services, \(streams) active streams\n"
    }

    private func services(json: Bool) -> String {
        let config = context.config
        let slots = context.slots.all.filter { $0.state == .connected || $0.state == .draining }
        func registration(_ name: String) -> (accepted: Int, rejected: [String]) {
            var accepted = 0
            var rejected: [String] = []
            for s in slots {
                if s.accepted.contains(name) { accepted += 1 }
                if let r = s.rejected.first(where: { $0.name == name }) { rejected.append("\(s.key.gateway): \(r.reason)") }
            }
            return (accepted, rejected)
        }
        let counters = context.stats.services.all
        if json {
            let list: [JSON] = config.services.map { s in
                let r = registration(s.name)
                let c = counters[s.name]
                var o: [String: JSON] = [
                    "name": .string(s.name), "type": .string(s.kind.rawValue), "upstream": .string("\(s.upstream)"),
                    "accepted_on": .number(Double(r.accepted)),
                    "connections": .number(Double(slots.count)), "rejected": .array(r.rejected.map(JSON.string)),
                    "active": .number(Double(c?.connectionsActive.value ?? 0)),
                    "bytes_in": .number(Double(c?.bytesIn.value ?? 0)), "bytes_out": .number(Double(c?.bytesOut.value ?? 0)),
                ]
                if let port = s.remotePort { o["remote_port"] = .number(Double(port)) }
                if s.kind == .http {
                    o["hosts"] = .array(s.hosts.map(JSON.string))
                    o["path_prefix"] = .string(s.pathPrefix ?? "/")
                }
                return .object(o)
            }
            return JSON.object(["services": .array(list)]).serialized() + "\n"
        }
        var table = TextTable(["SERVICE", "TYPE", "UPSTREAM", "PUBLISHED_AS", "REGISTERED", "ACTIVE", "BYTES_IN", "BYTES_OUT"])
        var problems: [String] = []
        for s in config.services {
            let r = registration(s.name)
            let c = counters[s.name]
            table.add([s.name, s.kind.rawValue, s.kind == .network ? "allow: \(s.allow.rules.count) rules" : "\(s.upstream)", Self.publishedAs(s), "\(r.accepted)/\(slots.count)",
                       "\(c?.connectionsActive.value ?? 0)", "\(c?.bytesIn.value ?? 0)", "\(c?.bytesOut.value ?? 0)"])
            problems += r.rejected.map { "\(s.name) rejected by \($0)" }
        }
        return table.render() + problems.map { $0 + "\n" }.joined()
    }

    /// `:2222` for a tcp service, `app.example.com/api` for an http one.
    private static func publishedAs(_ s: AgentConfig.Service) -> String {
        if s.isPrivate { return "private" }
        if let port = s.remotePort { return ":\(port)" }
        let prefix = s.pathPrefix.map { $0 == "/" ? "" : $0 } ?? ""
        return s.hosts.map { $0 + prefix }.joined(separator: ",")
    }

    /// Also the visitor's `connections`: its slots are the same dialers'.
    static func connections(_ slots: [AgentSlots.Slot], json: Bool) -> String {
        let now = NIODeadline.now()
        if json {
            let list: [JSON] = slots.map { s in
                .object([
                    "gateway": .string("\(s.key.gateway)"), "slot": .number(Double(s.key.index)), "state": .string(s.state.rawValue),
                    "carrier": s.carrier.map(JSON.string) ?? .null, "proxy": s.proxy.map(JSON.string) ?? .null,
                    "rtt_ms": s.rtt.map { .number(Double($0.nanoseconds) / 1e6) } ?? .null,
                    "streams": .number(Double(s.streams)),
                    "uptime_ms": s.connectedSince.map { .number(Double(CommonCommands.ms(now - $0))) } ?? .null,
                    "last_error": s.lastError.map(JSON.string) ?? .null,
                    "next_retry_ms": s.nextRetry.map { .number(Double(max(0, CommonCommands.ms($0 - now)))) } ?? .null,
                    "gateway_draining": .bool(s.gatewayDraining),
                ])
            }
            return JSON.object(["connections": .array(list)]).serialized() + "\n"
        }
        var table = TextTable(["GATEWAY", "SLOT", "STATE", "CARRIER", "VIA", "RTT", "STREAMS", "UPTIME", "NEXT_RETRY", "LAST_ERROR"])
        for s in slots {
            table.add([
                "\(s.key.gateway)", "\(s.key.index)", s.gatewayDraining ? "\(s.state.rawValue) (gateway draining)" : s.state.rawValue,
                s.carrier ?? "-", s.proxy ?? "direct", s.rtt.map { GatewayControl.rtt($0) } ?? "-", "\(s.streams)",
                s.connectedSince.map { DurationText.format(milliseconds: CommonCommands.ms(now - $0)) } ?? "-",
                s.nextRetry.map { "in " + DurationText.format(milliseconds: max(0, CommonCommands.ms($0 - now))) } ?? "-",
                s.lastError ?? "-",
            ])
        }
        return table.render()
    }
}

extension AgentRunner: MetricsSource {
    func prometheus() -> String { context.stats.report(draining: context.isDraining).prometheus() }

    /// Ready: at least one tunnel connection up and not draining.
    func notReady() -> String? {
        if context.isDraining { return "draining" }
        if context.slots.liveTunnels.isEmpty { return "no tunnel connection to a gateway is up" }
        return nil
    }
}
