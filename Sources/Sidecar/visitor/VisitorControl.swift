import NIOCore
import Protocol

/// The visitor's answers on its control socket: `status`, `stats`, `forwards`, `connections`.
struct VisitorControl: ControlResponder {
    let runner: VisitorRunner
    var role: ControlRole { .visitor }
    var daemon: any ManagedDaemon { runner }
    private var context: VisitorContext { runner.context }

    func respondToRoleCommand(_ request: ControlRequest, on loop: EventLoop) -> EventLoopFuture<ControlOutcome> {
        let json = request.format == .json
        switch request.command {
        case .status:
            return loop.makeSucceededFuture(.ok(status(json: json)))
        case .stats:
            var r = context.dial.stats.report(draining: context.isDraining)
            r.role = .visitor
            context.stats.add(to: &r)
            return loop.makeSucceededFuture(.ok(r.render(request.format)))
        case .forwards:
            return loop.makeSucceededFuture(.ok(forwards(json: json)))
        case .connections:
            return loop.makeSucceededFuture(.ok(AgentControl.connections(context.dial.slots.all, json: json)))
        default:
            return loop.makeSucceededFuture(.error(.notFound("not a visitor command")))
        }
    }

    private func status(json: Bool) -> String {
        let slots = context.dial.slots.all
        let connected = slots.filter { $0.state == .connected }.count
        let config = context.config
        let uptime = CommonCommands.ms(context.dial.stats.uptime)
        let listeners = config.forwards.count + (config.socks5 == nil ? 0 : 1)
        if json {
            return JSON.object([
                "role": .string("visitor"), "version": .string(FastgwVersion.current), "name": .string(config.name),
                "uptime_ms": .number(Double(uptime)), "connections": .number(Double(connected)),
                "slots": .number(Double(slots.count)), "listeners": .number(Double(listeners)),
                "draining": .bool(context.isDraining), "config": .string(config.file),
            ]).serialized() + "\n"
        }
        return "visitor \(config.name) \(context.isDraining ? "draining" : "serving"), up \(DurationText.format(milliseconds: uptime)): "
            + "\(connected)/\(slots.count) tunnel connections to \(config.connection.gateways.count) gateways, \(listeners) local listeners\n"
    }

    private func forwards(json: Bool) -> String {
        let config = context.config
        let counters = context.stats.listeners.all
        var rows: [(kind: String, listen: String, service: String, name: String)] = config.forwards.map {
            ("forward", "\($0.listen)", $0.service + ($0.target.map { " → \($0)" } ?? ""), ForwardIngress.counterName($0))
        }
        if let s = config.socks5 {
            rows.append(("socks5", "\(s)", config.socks5Network.map { "services, network \($0)" } ?? "services", Socks5Handler.counterName(s)))
        }
        if json {
            return JSON.object(["forwards": .array(rows.map { r in
                let c = counters[r.name]
                return .object([
                    "type": .string(r.kind), "listen": .string(r.listen), "service": .string(r.service),
                    "active": .number(Double(c?.connectionsActive.value ?? 0)), "total": .number(Double(c?.connectionsTotal.value ?? 0)),
                    "bytes_in": .number(Double(c?.bytesIn.value ?? 0)), "bytes_out": .number(Double(c?.bytesOut.value ?? 0)),
                ])
            })]).serialized() + "\n"
        }
        var table = TextTable(["TYPE", "LISTEN", "SERVICE", "ACTIVE", "TOTAL", "BYTES_IN", "BYTES_OUT"])
        for r in rows {
            let c = counters[r.name]
            table.add([r.kind, r.listen, r.service, "\(c?.connectionsActive.value ?? 0)", "\(c?.connectionsTotal.value ?? 0)",
                       "\(c?.bytesIn.value ?? 0)", "\(c?.bytesOut.value ?? 0)"])
        }
        return table.render()
    }
}
