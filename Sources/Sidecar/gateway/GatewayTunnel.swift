import Logging
import NIOCore
import Protocol

/// The gateway's view of one agent connection: registers it, opens the control stream,
/// authorises the agent's services, and withdraws its routes when it goes away.
final class GatewayTunnel: TunnelConnectionDelegate {
    private let gateway: GatewayContext
    private let accepted: TunnelHandshake.Accepted
    private let remote: String
    private var id: GatewayRegistry.ConnectionID?
    private var control: ControlStream?
    private var logger: Logger

    init(gateway: GatewayContext, accepted: TunnelHandshake.Accepted, remote: String) {
        self.gateway = gateway
        self.accepted = accepted
        self.remote = remote
        var logger = gateway.logger
        logger[metadataKey: "agent"] = "\(accepted.agent)"
        logger[metadataKey: "remote"] = "\(remote)"
        self.logger = logger
    }

    func tunnelEstablished(_ connection: TunnelConnection) {
        let ref = LoopBoundRef(connection, eventLoop: connection.eventLoop!)
        let id = gateway.registry.add(
            agent: accepted.agent, instance: accepted.instance, remote: remote, carrier: accepted.carrier.rawValue,
            token: accepted.token, tunnel: ref)
        self.id = id
        logger[metadataKey: "connection"] = "\(id)"
        logger.notice("agent connected", metadata: .event(.agentConnected, ["instance": "\(accepted.instance)", "carrier": "\(accepted.carrier.rawValue)"]))

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

    private func handle(_ message: ControlMessage) {
        guard let id, case .register(let services) = message else { return }
        let (accepted, rejected) = gateway.registry.register(id, services: services)
        for r in rejected {
            logger.warning("service registration rejected", metadata: .event(.registrationRejected, ["service": "\(r.name)", "reason": "\(r.reason)"]))
        }
        logger.info("services registered", metadata: ["accepted": "\(accepted.joined(separator: ","))"])
        control?.send(.registered(accepted: accepted, rejected: rejected))
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

    func tunnelReceivedGoaway(_ connection: TunnelConnection) {
        guard let id else { return }
        gateway.registry.markDraining(id)
        logger.notice("agent is draining this connection")
    }

    func tunnelClosed(_ connection: TunnelConnection, reason: String) {
        guard let id else { return }
        gateway.registry.remove(id)
        control = nil
        logger.notice("agent disconnected", metadata: .event(.agentDisconnected, ["reason": "\(reason)"]))
    }
}
