import Logging
import NIOCore
import Protocol

/// Gateway side of the tunnel handshake (DESIGN §2.1): reads the agent's upgrade request
/// after TLS, checks its token, answers 101 and hands the connection to HTTP/2 (through the
/// WebSocket carrier when the agent asked for it) — or answers
/// 400/401/403/426/503 with a one-line reason and closes. With `[tunnel] client_ca` the TLS
/// layer reads the agent's certificate without failing on a bad one, and the grant decides
/// (`TunnelHandshake.evaluate`), so a refusal can say why. The whole handshake, TLS
/// included, has `handshake_timeout` from accept; refusals are logged through
/// `RepeatedEvents`, and failed authentications feed the per-address throttle.
final class TunnelAcceptHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Streams one visitor tunnel connection may have open at once.
    static let maxVisitorStreams = 256

    private let gateway: GatewayContext
    /// Taken when the connection arrives: a reload does not change a handshake in progress.
    private let settings: GatewayContext.Settings
    private var parser = HTTPHeadParser(limit: 8192)
    private var timeout: Scheduled<Void>?
    private var finished = false
    /// Until TLS is up nothing can be written: a refusal then is a plain close.
    private var tlsEstablished = false
    private var remote = "?"
    /// The client for the failed-authentication throttle (after a PROXY header, if any).
    private var clientKey: ClientKey?
    /// The HTTPS listener this agent came through (`tunnel = true`); nil on the dedicated one.
    private let sharedListener: String?
    /// The client certificate TLS read (when `client_ca` asks for one), judged with the request.
    private var peerCertificate: PeerCertificate?

    /// `sharedListener`: the handshake arrives on an HTTPS listener with `tunnel = true`,
    /// after its TLS (the listener's certificate; no client certificate is asked for).
    init(gateway: GatewayContext, sharedListener: String? = nil) {
        self.gateway = gateway
        self.settings = gateway.settings
        self.sharedListener = sharedListener
        tlsEstablished = sharedListener != nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let addresses = context.channel.publicAddresses
        remote = addresses.clientDescription
        clientKey = addresses.client.map { ClientKey($0.address) }
        if sharedListener != nil, let key = clientKey, let remaining = gateway.admission.tunnelBlock(key) {
            // The dedicated listener refuses these at accept; here the connection is already up.
            gateway.stats.connectionsRefused.add("tunnel_auth_blocked")
            gateway.events.record(.blockedAddressRefused, [
                "client": "\(remote)", "address": "\(key)", "blocked_for_s": "\(remaining.components.seconds + 1)",
            ])
            finished = true
            context.close(promise: nil)
            return
        }
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: settings.handshakeTimeout) {
            me.value.refuse(context: ctx.value, .init(status: 408, reason: "handshake not completed in time"))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let done = event as? TLSHandshakeCompleted {
            tlsEstablished = true
            peerCertificate = done.peerCertificate
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        let bytes = unwrapInboundIn(data)
        switch parser.feed(bytes.readableBytesView) {
        case .needMore:
            return
        case .invalid(let reason):
            refuse(context: context, .init(status: 400, reason: reason))
        case .complete(let head, let rest):
            switch TunnelHandshake.evaluate(
                head, grants: gateway.registry.grants, visitors: settings.config.visitors, draining: gateway.isDraining,
                certificate: peerCertificate) {
            case .failure(let rejection):
                if rejection.status == 401 || rejection.status == 403 {
                    gateway.admission.authenticationFailed(clientKey)
                }
                refuse(context: context, rejection)
            case .success(let accepted):
                gateway.admission.authenticationSucceeded(clientKey)
                upgrade(context: context, accepted: accepted, rest: rest)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !finished {
            gateway.stats.tlsHandshakeFailures.add("tunnel")
            gateway.events.record(.tunnelTLSFailed, ["client": "\(remote)", "error": "\(error)"])
        }
        finished = true
        context.close(promise: nil)
    }

    func refuse(context: ChannelHandlerContext, _ rejection: TunnelHandshake.Rejection) {
        guard !finished else { return }
        finished = true
        timeout?.cancel()
        gateway.stats.handshakesRefused.add(String(rejection.status))
        var fields: Logger.Metadata = ["client": "\(remote)", "status": "\(rejection.status)", "reason": "\(rejection.reason)"]
        if let code = rejection.certificate {
            gateway.stats.certificatesRefused.add(code.rawValue)
            fields["certificate"] = "\(code.rawValue)"
            gateway.events.record(.tunnelCertificateRefused(code), fields)
        } else {
            gateway.events.record(.tunnelRefused(status: rejection.status), fields)
        }
        // Before TLS is up a write would only queue behind the handshake and never complete.
        guard tlsEstablished else { return context.close(promise: nil) }
        let bytes = context.channel.allocator.buffer(bytes: TunnelHandshake.refusal(rejection))
        BoundedClose.close(context.channel, after: context.writeAndFlush(wrapOutboundOut(bytes)))
    }

    private func upgrade(context: ChannelHandlerContext, accepted: TunnelHandshake.Accepted, rest: [UInt8]) {
        finished = true
        timeout?.cancel()
        let answer = TunnelHandshake.switchingProtocols(
            carrier: accepted.carrier, websocketAccept: accepted.websocketKey.map(WebSocketKey.accept(for:)))
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: answer.serialized())), promise: nil)
        do {
            // A visitor opens the streams (HTTP/2 client); an agent serves them (roles reversed).
            let visitor = accepted.peer == .visitor
            var tuning = settings.h2Tuning
            // Each visitor stream costs an agent an upstream connection: a visitor holds at
            // most this many at once per tunnel connection (more are refused by HTTP/2 itself).
            if visitor { tuning.maxConcurrentStreams = Self.maxVisitorStreams }
            let session = try H2Session(role: visitor ? .server : .client, tuning: tuning, allocator: context.channel.allocator)
            let connection = TunnelConnection(
                session: session, keepaliveInterval: settings.keepaliveInterval, keepaliveTimeout: settings.keepaliveTimeout)
            if visitor {
                connection.delegate = GatewayVisitor(gateway: gateway, accepted: accepted, remote: remote, settings: settings)
            } else {
                gateway.stats.agentConnectionsTotal.add()
                connection.delegate = GatewayTunnel(gateway: gateway, accepted: accepted, remote: remote, settings: settings)
            }
            try connection.takeOver(from: context, carrier: accepted.carrier, role: .server, early: rest)
        } catch {
            gateway.logger.error("cannot start tunnel session", metadata: ["client": "\(remote)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }
}

extension SocketAddress {
    /// `ip:port` (IPv6 in brackets), or the path of a Unix socket.
    var fastgwDescription: String {
        switch self {
        case .v4: return "\(ipAddress ?? "?"):\(port ?? 0)"
        case .v6: return "[\(ipAddress ?? "?")]:\(port ?? 0)"
        case .unixDomainSocket: return pathname ?? "unix"
        }
    }
}
