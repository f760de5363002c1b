import NIOCore
import Protocol

/// On an HTTPS listener with `tunnel = true`, after an HTTP/1.1 (or no) ALPN: reads the first
/// bytes of the connection and installs the agent's tunnel handshake (`TunnelAcceptHandler`)
/// when they start `GET /.fastgw/v1/tunnel `, else the HTTP/1.1 handler — at most 23 bytes
/// decide (`TunnelSniff`). Whatever was read goes to the chosen handler, which starts from
/// the connection's first byte. The first head's deadline covers the wait, so a client that
/// sends a few bytes and stops is closed like any slow one.
final class TunnelSniffHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let gateway: GatewayContext
    private let listener: String
    private let tls: PublicTLSSession
    private let acceptedAt: NIODeadline
    private var buffered: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var decided = false

    init(gateway: GatewayContext, listener: String, tls: PublicTLSSession, acceptedAt: NIODeadline) {
        self.gateway = gateway
        self.listener = listener
        self.tls = tls
        self.acceptedAt = acceptedAt
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let deadline = acceptedAt + TimeAmount(gateway.settings.config.http.headerTimeout)
        timer = context.eventLoop.scheduleTask(deadline: deadline) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !decided else { return context.fireChannelRead(data) }
        if buffered == nil {
            buffered = bytes
        } else {
            buffered!.writeBuffer(&bytes)
        }
        switch TunnelSniff.classify(buffered!.readableBytesView) {
        case .needMore:
            return
        case .tunnel:
            // The listener's policies hold agents to their address rules and connection
            // limits too (their requests are not HTTP requests: no per-request checks).
            let policy = PolicyEnforcer(gateway: gateway, listener: listener, addresses: context.channel.publicAddresses)
            guard policy.admitConnection(context.channel, addressRules: true) == .allow else {
                decided = true
                return context.close(promise: nil)
            }
            hand(context, to: TunnelAcceptHandler(gateway: gateway, sharedListener: listener))
        case .http:
            hand(context, to: HTTPServerHandler(gateway: gateway, listener: listener, tls: tls, acceptedAt: acceptedAt))
        }
    }

    /// The client half-closed before saying enough: nothing to serve.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !decided, case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func hand(_ context: ChannelHandlerContext, to handler: ChannelHandler) {
        decided = true
        timer?.cancel()
        do {
            try context.pipeline.syncOperations.addHandler(handler, position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        if let bytes = buffered.take() { context.fireChannelRead(wrapInboundOut(bytes)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    typealias InboundOut = ByteBuffer
}
