import NIOCore
import Protocol

/// The first handler of a public connection on a listener with `proxy_protocol = true`: the
/// peer must be in `[gateway] trusted_proxies` (checked at accept, `admitPeer`), and its
/// PROXY header must arrive whole and well-formed within `[limits] proxy_header_timeout`.
/// Until then nothing behind it runs: it holds `channelActive` back and fires it, then the
/// bytes that followed the header, once `addresses` says who the client is. Refused
/// connections are reset, counted by reason and logged through `RepeatedEvents`. Once the
/// header names a client, the connection counts against that client's
/// `max_connections_per_ip` too (`EdgeAdmission.admitProxiedClient`).
final class ProxyHeaderHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let gateway: GatewayContext
    private let listener: String
    private var parser = ProxyHeaderParser()
    private var timer: Scheduled<Void>?
    private var activeSeen = false
    /// Whether any byte arrived (a close before one is a health probe, not a bad header).
    private var received = false
    /// Set once the header is read; from then on every event passes through.
    private(set) var addresses: ConnectionAddresses?

    init(gateway: GatewayContext, listener: String) {
        self.gateway = gateway
        self.listener = listener
    }

    /// At accept: whether `channel`'s peer may send a PROXY header at all. A refused one is
    /// reset (the caller fails the initializer), counted and logged.
    static func admitPeer(_ channel: Channel, gateway: GatewayContext, listener: String) -> Bool {
        // No peer address: the connection was reset before it was accepted (a balancer's
        // health check often is); nothing to refuse or count.
        guard let peer = channel.remoteAddress?.ipEndpoint else { return false }
        if gateway.settings.config.trustedProxies.contains(peer.address) { return true }
        refuse(channel, gateway: gateway, listener: listener, reason: "untrusted",
               detail: "the peer is not in [gateway] trusted_proxies", peer: peer)
        gateway.admission.reset(channel)
        return false
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let limit = gateway.settings.config.limits.proxyHeaderTimeout
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(limit)) { [weak self] in
            guard let self, self.addresses == nil else { return }
            self.fail(context, reason: "timeout", detail: "no complete PROXY header within \(limit)")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelActive(context: ChannelHandlerContext) {
        if addresses != nil { return context.fireChannelActive() }
        activeSeen = true
        // Handlers behind may hold reads back until they are set up (a TCP connection's
        // bridge waits for its stream), which waits for this header: read it regardless.
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        // Handlers behind never saw the connection open: they need not see it close.
        if addresses != nil { context.fireChannelInactive() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard addresses == nil else { return context.fireChannelRead(data) }
        let bytes = unwrapInboundIn(data)
        if bytes.readableBytes > 0 { received = true }
        switch parser.feed(bytes.readableBytesView) {
        case .needMore:
            return
        case .refused(let error):
            fail(context, reason: "malformed", detail: "\(error)")
        case .header(let header, let rest):
            timer?.cancel()
            let read = ConnectionAddresses(channel: context.channel, header: header.addresses)
            if header.addresses.namesClient, let client = read.client,
               let limit = gateway.admission.admitProxiedClient(context.channel, client: client.address) {
                return fail(context, reason: "client_limit",
                            detail: "client \(client.address) already has \(limit) connections through the balancer ([limits] max_connections_per_ip)")
            }
            addresses = read
            if activeSeen { context.fireChannelActive() }
            // The handlers behind may have closed the connection on becoming active.
            guard context.channel.isActive, !rest.isEmpty else { return }
            context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: rest)))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if addresses != nil { return context.fireChannelReadComplete() }
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if addresses != nil { return context.fireUserInboundEventTriggered(event) }
        // A half-close or the gateway's drain before the header: nothing to finish.
        if case ChannelEvent.inputClosed = event {
            // Closed before a single byte: a balancer's plain TCP health probe, every few
            // seconds. Counted apart (`proxy_empty`), never logged, and closed with a FIN.
            if !received {
                gateway.stats.connectionsRefused.add("proxy_empty")
                return context.close(promise: nil)
            }
            return fail(context, reason: "malformed", detail: "the peer closed before a complete PROXY header")
        }
        if event is HTTPDrainNotice { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if addresses != nil { return context.fireErrorCaught(error) }
        context.close(promise: nil)
    }

    private func fail(_ context: ChannelHandlerContext, reason: String, detail: String) {
        Self.refuse(context.channel, gateway: gateway, listener: listener, reason: reason, detail: detail,
                    peer: context.channel.remoteAddress?.ipEndpoint)
        gateway.admission.reset(context.channel)
        context.close(promise: nil)
    }

    private static func refuse(_ channel: Channel, gateway: GatewayContext, listener: String, reason: String, detail: String, peer: IPEndpoint?) {
        gateway.stats.connectionsRefused.add("proxy_\(reason)")
        gateway.events.record(.proxyHeaderRefused(reason: reason), [
            "listener": "\(listener)", "peer": "\(peer?.description ?? "?")", "reason": "\(detail)",
        ])
    }
}
