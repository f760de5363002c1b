import Logging
import NIOCore
import Protocol

/// The gateway's view of one agent connection: registers it, opens the control stream,
/// authorises the agent's services, and withdraws its routes when it goes away.
final class GatewayTunnel: TunnelConnectionDelegate {
    private let gateway: GatewayContext
    private let accepted: TunnelHandshake.Accepted
    private let remote: String
    /// The settings in force when the agent arrived: a reload since means its credentials
    /// are checked again against the new ones once it is registered.
    private let settings: GatewayContext.Settings
    private var id: GatewayRegistry.ConnectionID?
    private var control: ControlStream?
    private weak var connection: TunnelConnection?
    private var pacing = RegistrationPacing()
    private var logger: Logger

    init(gateway: GatewayContext, accepted: TunnelHandshake.Accepted, remote: String, settings: GatewayContext.Settings) {
        self.gateway = gateway
        self.accepted = accepted
        self.remote = remote
        self.settings = settings
        logger = gateway.peerLogger(role: "agent", accepted, remote: remote)
    }

    func tunnelEstablished(_ connection: TunnelConnection) {
        let ref = LoopBoundRef(connection, eventLoop: connection.eventLoop!)
        let id = gateway.registry.add(
            agent: accepted.agent, instance: accepted.instance, remote: remote, carrier: accepted.carrier.rawValue,
            token: accepted.token, certificate: accepted.certificate, tunnel: ref)
        self.id = id
        self.connection = connection
        logger[metadataKey: "connection"] = "\(id)"
        logger.notice("agent connected", metadata: .event(.agentConnected, ["instance": "\(accepted.instance)", "carrier": "\(accepted.carrier.rawValue)"]))
        if let reason = credentialsWithdrawnByReload() {
            logger.notice("closing agent connection after reload", metadata: ["reason": "\(reason)"])
            return connection.close(reason: reason)
        }

        let control = ControlStream(connection: connection)
        control.onMessage = { [unowned self] message in self.handle(message) }
        control.onFailure = { [unowned connection] reason in connection.close(reason: "control stream: \(reason)") }
        do {
            control.streamID = try connection.openStream(
                headers: ControlStreamHeaders.request(authority: accepted.agent), handler: control)
            connection.idleExempt.insert(control.streamID)
            self.control = control
            if gateway.isDraining { control.send(.draining) }
        } catch {
            connection.close(reason: "cannot open control stream: \(error)")
        }
    }

    /// A reload that ran while this agent was handshaking did not see its connection; check
    /// it here against the grant and trust now in force.
    private func credentialsWithdrawnByReload() -> String? {
        let now = gateway.settings
        guard now !== settings else { return nil }
        guard let grant = gateway.registry.grants.first(where: { $0.name == accepted.agent }) else {
            return "agent \"\(accepted.agent)\" was removed from the configuration"
        }
        let certificate = grant.auth.usesCertificate ? accepted.certificate.map { $0.reverified(by: now.tls) } : accepted.certificate
        return TunnelHandshake.recheck((accepted.token, certificate), agent: accepted.agent, grant: grant)
    }

    private func handle(_ message: ControlMessage) {
        guard let id, case .register(let services) = message else { return }
        switch pacing.judge(services: services.count, at: .nanoseconds(NIODeadline.now().uptimeNanoseconds)) {
        case .flood:
            gateway.stats.registrationsRefused.add("flood")
            logger.warning("agent sends registrations too fast; closing its connection", metadata: .event(.registrationRejected, [
                "limit": "\(RegistrationPacing.maxPerWindow) per \(RegistrationPacing.window)",
            ]))
            connection?.close(reason: "registration flood")
        case .tooManyServices(let n):
            gateway.stats.registrationsRefused.add("too_many_services")
            let reason = "a registration may declare at most \(RegistrationPacing.maxServices) services, this one declares \(n)"
            logger.warning("service registration rejected", metadata: .event(.registrationRejected, ["reason": "\(reason)"]))
            control?.send(.registered(accepted: [], rejected: [.init(name: "*", reason: reason)]))
        case .accept:
            let (accepted, rejected) = gateway.registry.register(id, services: services)
            logRejections(rejected)
            logger.info("services registered", metadata: ["accepted": "\(accepted.count)", "rejected": "\(rejected.count)"])
            control?.send(.registered(accepted: accepted, rejected: rejected))
        }
    }

    /// The first few rejections one line each, the rest as a count: the agent gets every
    /// reason in its answer, the log need not repeat them.
    private func logRejections(_ rejected: [ControlMessage.Rejected]) {
        let shown = 5
        for r in rejected.prefix(shown) {
            logger.warning("service registration rejected", metadata: .event(.registrationRejected, ["service": "\(r.name)", "reason": "\(r.reason)"]))
        }
        if rejected.count > shown {
            logger.warning("\(rejected.count - shown) more service registrations rejected", metadata: .event(.registrationRejected, [
                "count": "\(rejected.count - shown)",
            ]))
        }
    }

    /// A message on this connection's control stream (`draining`, a new `registered`).
    func notify(_ message: ControlMessage) {
        control?.send(message)
    }

    func tunnelMeasured(_ connection: TunnelConnection, rtt: TimeAmount) {
        if let id { gateway.registry.setRTT(id, rtt) }
    }

    func tunnel(_ connection: TunnelConnection, incomingStream id: Int32, headers: [HeaderField], endStream: Bool)
        -> TunnelStreamHandler? {
        nil  // the agent is the HTTP/2 server: it never opens streams
    }

    func tunnelRefusedHeaders(_ connection: TunnelConnection) {
        gateway.stats.headerBlocksRefused.add("tunnel")
    }

    func tunnelReceivedGoaway(_ connection: TunnelConnection) {
        guard let id else { return }
        gateway.registry.markDraining(id)
        logger.notice("agent sent GOAWAY: no new streams on this connection; it closes when its streams end")
    }

    func tunnelClosed(_ connection: TunnelConnection, reason: String) {
        guard let id else { return }
        gateway.registry.remove(id)
        control = nil
        logger.notice("agent disconnected", metadata: .event(.agentDisconnected, ["reason": "\(reason)"]))
    }
}
