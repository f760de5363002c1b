import NIOCore
import Protocol

/// The gateway's answers on its control socket (DESIGN §4).
struct GatewayControl: ControlResponder {
    let server: GatewayServer
    var role: ControlRole { .gateway }

    private var context: GatewayContext { server.context }

    var daemon: any ManagedDaemon { server }

    func respondToRoleCommand(_ request: ControlRequest, on loop: EventLoop) -> EventLoopFuture<ControlOutcome> {
        let json = request.format == .json
        switch request.command {
        case .status:
            return loop.makeSucceededFuture(.ok(status(json: json)))
        case .stats:
            return loop.makeSucceededFuture(.ok(report().render(request.format)))
        case .agents:
            return loop.makeSucceededFuture(.ok(agents(json: json)))
        case .routes:
            return loop.makeSucceededFuture(.ok(routes(json: json)))
        case .policies:
            return loop.makeSucceededFuture(.ok(PolicyReport(context: context).render(json: json)))
        case .certificates:
            return loop.makeSucceededFuture(.ok(AcmeReport(server.acme.snapshot).render(json: json)))
        default:
            return loop.makeSucceededFuture(.error(.notFound("not a gateway command")))
        }
    }

    private func report() -> StatsReport {
        server.report()
    }

    private func status(json: Bool) -> String {
        let connections = context.registry.connections
        let agents = Set(connections.map(\.agent)).count
        let uptime = CommonCommands.ms(context.stats.uptime)
        let listeners = server.boundListeners.count
        let publicConnections = context.stats.publicConnectionsActive.value
        let draining = context.isDraining
        if json {
            return JSON.object([
                "role": .string("gateway"), "version": .string(FastgwVersion.current),
                "uptime_ms": .number(Double(uptime)), "agents": .number(Double(agents)),
                "agent_connections": .number(Double(connections.count)), "listeners": .number(Double(listeners)),
                "connections": .number(Double(publicConnections)), "draining": .bool(draining),
                "config": .string(context.settings.config.file),
            ]).serialized() + "\n"
        }
        return "gateway \(draining ? "draining" : "serving"), up \(DurationText.format(milliseconds: uptime)): "
            + "\(agents) agents on \(connections.count) tunnel connections, \(publicConnections) public connections, "
            + "\(listeners) listeners\n"
    }

    /// The client certificate a connection came with: what a pin or a subject is written from.
    private static func describe(_ c: PeerCertificate) -> JSON {
        .object([
            "sha256": .string(Hex.encode(c.sha256)), "common_names": .array(c.commonNames.map(JSON.string)),
            "dns_names": .array(c.dnsNames.map(JSON.string)), "uris": .array(c.uris.map(JSON.string)),
        ])
    }

    private func agents(json: Bool) -> String {
        let connections = context.registry.connections
        let now = NIODeadline.now()
        if json {
            var byAgent: [String: [JSON]] = [:]
            for c in connections {
                byAgent[c.agent, default: []].append(.object([
                    "id": .number(Double(c.id)), "instance": .string(c.instance), "carrier": .string(c.carrier),
                    "remote": .string(c.remote), "rtt_ms": c.rtt.map { .number(Double($0.nanoseconds) / 1e6) } ?? .null,
                    "streams": .number(Double(c.streams)), "services": .array(c.accepted.map(JSON.string)),
                    "uptime_ms": .number(Double(CommonCommands.ms(now - c.since))), "draining": .bool(c.draining),
                    "certificate": c.certificate.map(Self.describe) ?? .null,
                ]))
            }
            let list: [JSON] = byAgent.keys.sorted().map { name in
                .object(["name": .string(name), "connections": .array(byAgent[name]!)])
            }
            return JSON.object(["agents": .array(list)]).serialized() + "\n"
        }
        var table = TextTable(["AGENT", "CONN", "CARRIER", "REMOTE", "RTT", "STREAMS", "SERVICES", "UPTIME", "STATE"])
        for c in connections {
            table.add([
                c.agent, "#\(c.id)", c.carrier, c.remote, c.rtt.map { Self.rtt($0) } ?? "-", "\(c.streams)",
                c.accepted.isEmpty ? "-" : c.accepted.joined(separator: ","),
                DurationText.format(milliseconds: CommonCommands.ms(now - c.since)), c.draining ? "draining" : "live",
            ])
        }
        return table.render()
    }

    private func routes(json: Bool) -> String {
        let routes = context.registry.routes
        // Visitors' services, by name (`[[agent]] allow_services`): no listener of their own.
        let privateRoutes = context.registry.privateRoutes.sorted { $0.key < $1.key }
        let streams = Dictionary(context.registry.connections.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let ports = server.boundListeners.filter { $0.kind == .tcp }.sorted { $0.address.port < $1.address.port }
        if json {
            let list: [JSON] = ports.map { l in
                .object([
                    "listener": .string(l.name), "address": .string("\(l.address)"),
                    "service": (routes[l.address.port]?.first?.service).map(JSON.string) ?? .null,
                    "backends": .array((routes[l.address.port] ?? []).map { e in
                        .object(["agent": .string(e.agent), "connection": .number(Double(e.connection)),
                                 "streams": .number(Double(streams[e.connection]?.streams ?? 0)),
                                 "draining": .bool(streams[e.connection]?.draining ?? false)])
                    }),
                ])
            }
            let http: [JSON] = httpRoutes.map { r in
                .object([
                    "host": .string(r.host), "path_prefix": .string(r.prefix), "service": .string(r.service),
                    "backends": .array(r.entries.map { e in
                        .object(["agent": .string(e.agent), "connection": .number(Double(e.connection)),
                                 "streams": .number(Double(streams[e.connection]?.streams ?? 0)),
                                 "draining": .bool(streams[e.connection]?.draining ?? false)])
                    }),
                ])
            }
            let priv: [JSON] = privateRoutes.map { name, entries in
                .object(["service": .string(name), "type": .string(entries.first?.type ?? "tcp"),
                         "backends": .array(entries.map { e in
                             .object(["agent": .string(e.agent), "connection": .number(Double(e.connection)),
                                      "streams": .number(Double(streams[e.connection]?.streams ?? 0))])
                         })])
            }
            return JSON.object(["routes": .array(list), "http_routes": .array(http), "private_routes": .array(priv)]).serialized() + "\n"
        }
        var table = TextTable(["LISTENER", "ADDRESS", "SERVICE", "AGENT", "CONN", "STREAMS", "STATE"])
        for l in ports {
            let entries = routes[l.address.port] ?? []
            if entries.isEmpty { table.add([l.name, "\(l.address)", "-", "(no agent)", "-", "-", "-"]) }
            for e in entries {
                let c = streams[e.connection]
                table.add([l.name, "\(l.address)", e.service, e.agent, "#\(e.connection)", "\(c?.streams ?? 0)",
                           c?.draining == true ? "draining" : "live"])
            }
        }
        var out = table.render()
        if !privateRoutes.isEmpty {
            var priv = TextTable(["PRIVATE SERVICE", "TYPE", "AGENT", "CONN", "STREAMS", "STATE"])
            for (name, entries) in privateRoutes {
                for e in entries {
                    let c = streams[e.connection]
                    priv.add([name, e.type, e.agent, "#\(e.connection)", "\(c?.streams ?? 0)", c?.draining == true ? "draining" : "live"])
                }
            }
            out += "\n" + priv.render()
        }
        guard !httpRoutes.isEmpty else { return out }
        var web = TextTable(["HTTP ROUTE", "SERVICE", "AGENT", "CONN", "STREAMS", "STATE"])
        for r in httpRoutes {
            for e in r.entries {
                let c = streams[e.connection]
                web.add([r.host + (r.prefix == "/" ? "" : r.prefix), r.service, e.agent, "#\(e.connection)",
                         "\(c?.streams ?? 0)", c?.draining == true ? "draining" : "live"])
            }
        }
        return out + "\n" + web.render()
    }

    /// HTTP routes grouped by host and prefix, most specific first.
    private var httpRoutes: [(host: String, prefix: String, service: String, entries: [HTTPRouteTable<GatewayRegistry.ConnectionID>.Entry])] {
        let grouped = Dictionary(grouping: context.registry.httpRoutes) { "\($0.host) \($0.pathPrefix)" }
        return grouped.values.compactMap { entries in
            entries.first.map { ("\($0.host)", $0.pathPrefix, $0.service, entries.sorted { $0.connection < $1.connection }) }
        }.sorted { ($0.host, $0.prefix) < ($1.host, $1.prefix) }
    }

    static func rtt(_ t: TimeAmount) -> String {
        let us = t.nanoseconds / 1000
        if us < 1000 { return "\(us)us" }
        return us < 10_000 ? String(format1: Double(us) / 1000) + "ms" : "\(us / 1000)ms"
    }
}

extension String {
    /// One decimal place, without Foundation.
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(tenths % 10)"
    }
}

extension GatewayServer: MetricsSource {
    func report() -> StatsReport {
        let connections = context.registry.connections
        var r = context.stats.report(
            agentConnections: connections.count, agents: Set(connections.map(\.agent)).count, draining: context.isDraining)
        let settings = context.settings
        var expiries = settings.publicTLS.expiries
        if let tunnel = settings.tls, let expiry = tunnel.certificateExpiry { expiries[settings.config.tunnel.cert] = expiry }
        let acme = AcmeReport(self.acme.snapshot)
        expiries.merge(acme.expiries) { a, _ in a }
        r.add("certificate_expiry_timestamp_seconds", .gauge,
              "When each certificate in use expires (seconds since the epoch), by certificate file: the tunnel's and the HTTPS listeners'.",
              by: "certificate", expiries)
        acme.addMetrics(to: &r)
        return r
    }

    func prometheus() -> String { report().prometheus() }

    /// Ready: listening and not draining (a balancer takes a draining gateway out first).
    func notReady() -> String? {
        if context.isDraining { return "draining" }
        if boundListeners.isEmpty { return "no listener is bound yet" }
        return nil
    }
}
