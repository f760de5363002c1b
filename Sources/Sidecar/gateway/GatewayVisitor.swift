import CNghttp2
import Logging
import NIOCore
import Protocol

/// The gateway's side of one visitor connection. Roles are not reversed here: the visitor
/// is the HTTP/2 client and opens one CONNECT stream per local connection, naming a private
/// service (`:authority`) and, for a network service, its destination (`fastgw-target`).
/// Each granted stream is spliced to a new stream on an agent serving that service; the
/// agent's answer (`:status`, `fastgw-reason`) is relayed as the visitor stream's response.
///
/// Round trips: the visitor sends DATA right behind its HEADERS, the gateway holds it within
/// the stream window and relays it as soon as the agent stream is open, so a forward costs
/// the visitor→gateway→agent path once plus the agent's upstream connect — nothing extra.
final class GatewayVisitor: TunnelConnectionDelegate {
    private let gateway: GatewayContext
    private let accepted: TunnelHandshake.Accepted
    private let remote: String
    private let settings: GatewayContext.Settings
    private var id: UInt64?
    private var logger: Logger

    init(gateway: GatewayContext, accepted: TunnelHandshake.Accepted, remote: String, settings: GatewayContext.Settings) {
        self.gateway = gateway
        self.accepted = accepted
        self.remote = remote
        self.settings = settings
        logger = gateway.peerLogger(role: "visitor", accepted, remote: remote)
    }

    func tunnelEstablished(_ connection: TunnelConnection) {
        id = gateway.visitors.add(.init(
            name: accepted.agent, remote: remote, carrier: accepted.carrier.rawValue, token: accepted.token,
            certificate: accepted.certificate, since: .now(), tunnel: LoopBoundRef(connection, eventLoop: connection.eventLoop!)))
        gateway.stats.visitorConnectionsActive.add()
        logger.notice("visitor connected", metadata: .event(.agentConnected, ["carrier": "\(accepted.carrier.rawValue)"]))
        // A reload that ran during the handshake did not see this connection.
        if gateway.settings !== settings, let reason = withdrawnByReload() {
            logger.notice("closing visitor connection after reload", metadata: ["reason": "\(reason)"])
            connection.close(reason: reason)
        }
    }

    private func withdrawnByReload() -> String? {
        let now = gateway.settings
        guard let grant = now.config.visitors.first(where: { $0.name == accepted.agent }) else {
            return "visitor \"\(accepted.agent)\" was removed from the configuration"
        }
        let certificate = grant.auth.usesCertificate ? accepted.certificate.map { $0.reverified(by: now.tls) } : accepted.certificate
        return TunnelHandshake.recheck((accepted.token, certificate), agent: accepted.agent, grant: grant, peer: .visitor)
    }

    func tunnel(_ connection: TunnelConnection, incomingStream id: Int32, headers: [HeaderField], endStream: Bool)
        -> TunnelStreamHandler? {
        guard headers[":method"] == "CONNECT", let service = headers[":authority"], !service.isEmpty else {
            return refuse(connection, id, 400, "bad_request", "expected CONNECT naming a service")
        }
        let target = headers["fastgw-target"]
        guard let grant = gateway.settings.config.visitors.first(where: { $0.name == accepted.agent }),
              grant.allowServices.contains(service) else {
            return refuse(connection, id, 403, "not_granted", "visitor \"\(accepted.agent)\" may not reach service \"\(service)\"", service)
        }
        guard let (route, type) = gateway.registry.pickPrivate(service: service, preferring: connection.eventLoop!) else {
            return refuse(connection, id, 503, "no_agent", "no live agent serves private service \"\(service)\"", service)
        }
        guard (type == "network") == (target != nil) else {
            gateway.registry.streamEnded(route.connection)
            let why = type == "network" ? "service \"\(service)\" is a network service: name a destination"
                : "service \"\(service)\" is not a network service: it takes no destination"
            return refuse(connection, id, 400, "bad_request", why, service)
        }
        let link = StreamSplice.Link(connection: connection)
        link.streamID = id
        splice(link.ref, to: route, fields: [
            HeaderField(":method", "CONNECT"), HeaderField(":authority", service),
            HeaderField("fastgw-client", remote), HeaderField("fastgw-visitor", accepted.agent),
        ] + (target.map { [HeaderField("fastgw-target", $0)] } ?? []))
        return link
    }

    /// Opens the agent's stream on its connection's loop and pairs the two splices; the
    /// visitor's held bytes flow only once both directions are wired.
    private func splice(_ visitor: LoopBoundRef<StreamSplice.Link>, to route: GatewayRegistry.Route, fields: [HeaderField]) {
        let (gateway, logger, name) = (self.gateway, self.logger, accepted.agent)
        let stats = gateway.stats
        let started = NIODeadline.now()
        route.tunnel.run { agentConnection in
            guard agentConnection.takesNewStreams else {
                gateway.registry.streamEnded(route.connection)
                stats.visitorStreamsRefused.add("no_agent")
                visitor.run { $0.respond(headers: Self.answer(503, "the agent serving \"\(route.service)\" is draining"), endStream: true) }
                return
            }
            let agentLink = StreamSplice.Link(connection: agentConnection)
            do {
                agentLink.streamID = try agentConnection.openStream(headers: fields, handler: agentLink)
            } catch {
                gateway.registry.streamEnded(route.connection)
                stats.visitorStreamsRefused.add("stream_open_failed")
                visitor.run { $0.respond(headers: Self.answer(503, "cannot open a stream to the agent: \(error)"), endStream: true) }
                return
            }
            stats.visitorStreamsActive.add()
            stats.visitorStreamsTotal.add()
            // As for public connections: an agent that does not answer within
            // stream_open_timeout gets the stream reset, and the visitor's with it.
            var answered = false
            agentLink.onHeaders = { _, _ in answered = true }
            let timeout = route.tunnel.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(gateway.settings.limits.streamOpenTimeout)) {
                guard !answered else { return }
                stats.visitorStreamsRefused.add("agent_timeout")
                gateway.events.record(.streamOpenTimedOut, ["visitor": "\(name)", "service": "\(route.service)", "agent": "\(route.agent)"])
                agentLink.socketFailed()
            }
            agentLink.onClosed = { code in
                timeout.cancel()
                gateway.registry.streamEnded(route.connection)
                stats.visitorStreamsActive.subtract()
                let level: Logger.Level = gateway.settings.config.accessLog ? .info : .debug
                logger.log(level: level, "visitor stream closed", metadata: .event(.connectionClosed, [
                    "service": "\(route.service)", "agent": "\(route.agent)", "error_code": "\(code)",
                    "duration_ms": "\((NIODeadline.now() - started).nanoseconds / 1_000_000)",
                ]))
            }
            let toAgent = LoopBoundRef(StreamSplice(into: agentLink, answers: false), eventLoop: route.tunnel.eventLoop)
            let agentRef = LoopBoundRef(agentLink, eventLoop: route.tunnel.eventLoop)
            visitor.run { visitorLink in
                let toVisitor = StreamSplice(into: visitorLink, answers: true)
                toVisitor.onAnswer = { status, reason in
                    guard status != "200" else { return }
                    let label = TCPIngress.failureReason(status: status)
                    stats.visitorStreamsRefused.add(label)
                    gateway.events.record(.visitorStreamRefused(reason: label), [
                        "visitor": "\(name)", "service": "\(route.service)", "agent": "\(route.agent)",
                        "status": "\(status)", "reason": "\(reason ?? "")",
                    ])
                }
                let toVisitorRef = LoopBoundRef(toVisitor, eventLoop: visitor.eventLoop)
                toVisitor.pair(with: toAgent)
                toAgent.run { splice in
                    splice.pair(with: toVisitorRef)
                    agentRef.run { $0.attach(toVisitorRef) }
                    visitor.run { $0.attach(toAgent) }
                }
            }
        }
    }

    private static func answer(_ status: Int, _ reason: String) -> [HeaderField] {
        [HeaderField(":status", String(status)), HeaderField("fastgw-reason", reason)]
    }

    /// Answers the stream with a status and a reason the visitor logs, and counts it.
    private func refuse(
        _ connection: TunnelConnection, _ id: Int32, _ status: Int, _ label: String, _ reason: String, _ service: String = "?"
    ) -> TunnelStreamHandler? {
        gateway.stats.visitorStreamsRefused.add(label)
        gateway.events.record(.visitorStreamRefused(reason: label), [
            "visitor": "\(accepted.agent)", "service": "\(service)", "status": "\(status)", "reason": "\(reason)",
        ])
        connection.respond(stream: id, headers: Self.answer(status, reason), endStream: true)
        return nil
    }

    func tunnelReceivedGoaway(_ connection: TunnelConnection) {}

    func tunnelRefusedHeaders(_ connection: TunnelConnection) {
        gateway.stats.headerBlocksRefused.add("visitor")
    }

    func tunnelClosed(_ connection: TunnelConnection, reason: String) {
        guard let id else { return }
        gateway.visitors.remove(id)
        gateway.stats.visitorConnectionsActive.subtract()
        logger.notice("visitor disconnected", metadata: .event(.agentDisconnected, ["reason": "\(reason)"]))
    }
}
