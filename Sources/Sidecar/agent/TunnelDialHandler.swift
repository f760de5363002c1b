import NIOCore
import Protocol

/// How one attempt to open a tunnel connection ended.
enum DialOutcome: Sendable {
    case upgraded(NIOLoopBound<TunnelConnection>)
    case refused(status: Int, reason: String)
    case failed(String)
    /// The egress proxy would not open the path to the gateway (no TLS was attempted).
    case proxyFailed(EgressProxyFailure)
}

/// Agent side of the tunnel handshake (DESIGN §2.1): after TLS, sends the upgrade request for
/// its carrier; on 101 hands the connection to HTTP/2 as the server (through the WebSocket
/// carrier when that was asked for); otherwise reports the gateway's reason.
final class TunnelDialHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let agent: AgentContext
    private let slot: SlotKey
    private let host: String
    private let outcome: EventLoopPromise<DialOutcome>
    private let carrier: TunnelHandshake.Carrier
    /// WebSocket carrier: the key sent, and the accept value the 101 must carry.
    private let websocketKey: String?
    private let websocketAccept: String?
    private var parser = HTTPHeadParser(limit: 16384)
    private var refusal: (head: HTTPHead, body: [UInt8], length: Int)?
    private var reported = false

    init(
        agent: AgentContext, slot: SlotKey, host: String, carrier: TunnelHandshake.Carrier,
        outcome: EventLoopPromise<DialOutcome>
    ) {
        self.agent = agent
        self.slot = slot
        self.host = host
        self.carrier = carrier
        self.outcome = outcome
        websocketKey = carrier == .websocket ? WebSocketKey.make() : nil
        websocketAccept = websocketKey.map(WebSocketKey.accept(for:))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted {
            let c = agent.settings.config
            let head = TunnelHandshake.request(
                host: host, token: c.token, agent: c.name, instance: agent.instance, websocketKey: websocketKey, peer: agent.peer)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: head.serialized())), promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if var r = refusal {
            r.body += bytes.readableBytesView.prefix(max(0, r.length - r.body.count))
            refusal = r
            if r.body.count >= r.length { finishRefusal(context: context) }
            return
        }
        switch parser.feed(bytes.readableBytesView) {
        case .needMore:
            return
        case .invalid(let reason):
            report(.failed("gateway sent an invalid handshake answer: \(reason)"))
            context.close(promise: nil)
        case .complete(let head, let rest):
            switch TunnelHandshake.interpret(head, body: [], websocketAccept: websocketAccept) {
            case .upgraded:
                upgrade(context: context, rest: rest)
            case .malformed(let reason):
                report(.failed("gateway sent an invalid handshake answer: \(reason)"))
                context.close(promise: nil)
            case .refused:
                let length = min(Int(head["Content-Length"] ?? "") ?? 1024, 1024)
                refusal = (head, Array(rest.prefix(length)), length)
                if rest.count >= length { finishRefusal(context: context) }
            }
        }
    }

    private func finishRefusal(context: ChannelHandlerContext) {
        guard let r = refusal else { return }
        if case .refused(let status, let reason) = TunnelHandshake.interpret(r.head, body: r.body) {
            report(.refused(status: status, reason: reason))
        }
        context.close(promise: nil)
    }

    private func upgrade(context: ChannelHandlerContext, rest: [UInt8]) {
        do {
            let settings = agent.settings
            let session = try H2Session(role: agent.peer == .visitor ? .client : .server, tuning: settings.h2Tuning, allocator: context.channel.allocator)
            let t = settings.config.tuning
            let connection = TunnelConnection(
                session: session, keepaliveInterval: TimeAmount(t.keepaliveInterval), keepaliveTimeout: TimeAmount(t.keepaliveTimeout))
            connection.delegate = agent.makeDelegate(agent, slot)
            try connection.takeOver(from: context, carrier: carrier, role: .client, early: rest)
            report(.upgraded(NIOLoopBound(connection, eventLoop: context.eventLoop)))
        } catch {
            report(.failed("cannot start tunnel session: \(error)"))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        report(.failed("\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if refusal != nil { finishRefusal(context: context) }
        report(.failed("gateway closed the connection during the handshake"))
        context.fireChannelInactive()
    }

    private func report(_ o: DialOutcome) {
        guard !reported else { return }
        reported = true
        outcome.succeed(o)
    }
}
