import Logging
import NIOCore
import Protocol

/// What an HTTPS connection's handshake settled: the SNI the client sent and the
/// certificates it was chosen from.
struct PublicTLSSession {
    let serverName: String?
    let selector: CertificateSelector

    /// A reason for 421 when a request names a host this connection's certificate was not
    /// chosen for (a client reusing a connection for another site); nil when it may be served.
    func misdirected(host authority: String) -> String? {
        guard let serverName else { return nil }
        let host = HostPattern.normalize(authority)
        if host == HostPattern.normalize(serverName) || selector.sameCertificate(host, serverName) { return nil }
        return "host \"\(host)\" is not served on a connection opened for \"\(serverName)\""
    }
}

/// The first handler of a public HTTPS connection: waits for the TLS handshake (at most the
/// header timeout), then hands the connection to the handler for the protocol ALPN chose.
final class HTTPSNegotiation: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    let gateway: GatewayContext
    let listener: String
    let selector: CertificateSelector
    private var timer: Scheduled<Void>?
    /// The HTTP/1.1 head's deadline counts from here, so TLS and the head share one.
    private let acceptedAt = NIODeadline.now()

    init(gateway: GatewayContext, listener: String, selector: CertificateSelector) {
        self.gateway = gateway
        self.listener = listener
        self.selector = selector
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let limit = gateway.settings.config.http.headerTimeout
        timer = context.eventLoop.scheduleTask(in: TimeAmount(limit)) {
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    /// `tunnel = true` on this listener in the configuration current at the handshake.
    private var takesAgents: Bool {
        gateway.settings.config.listeners.contains { $0.name == listener && $0.tunnel }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let done = event as? TLSHandshakeCompleted {
            timer?.cancel()
            let session = PublicTLSSession(serverName: done.serverName, selector: selector)
            if done.alpn == AcmeALPNOffer.protocolName {
                // A TLS-ALPN-01 validation (RFC 8737 §3): the handshake was the answer.
                gateway.logger.debug("acme tls-alpn-01 handshake answered", metadata: ["host": "\(done.serverName ?? "-")"])
                context.close(promise: nil)
                return
            }
            do {
                if done.alpn == "h2" {
                    try H2PublicConnection.install(on: context.channel, gateway: gateway, listener: listener, tls: session, after: self)
                } else if takesAgents {
                    // Agents speak HTTP/1.1 (ALPN http/1.1): their first bytes tell them apart.
                    try context.pipeline.syncOperations.addHandler(
                        TunnelSniffHandler(gateway: gateway, listener: listener, tls: session, acceptedAt: acceptedAt),
                        position: .after(self))
                } else {
                    try context.pipeline.syncOperations.addHandler(
                        HTTPServerHandler(gateway: gateway, listener: listener, tls: session, acceptedAt: acceptedAt),
                        position: .after(self))
                }
            } catch {
                context.close(promise: nil)
                return
            }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        if event is HTTPDrainNotice {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Scanners and clients that distrust the certificate end here: counted, not worth a warning.
        gateway.stats.tlsHandshakeFailures.add("public")
        gateway.events.record(.publicTLSFailed, [
            "listener": "\(listener)", "client": "\(context.channel.publicAddresses.clientDescription)",
            "error": "\(error)",
        ])
        context.close(promise: nil)
    }
}
