import Logging
import NIOCore
import Protocol

/// One local connection to a `[[forward]]` listener: a stream to its service opened at once,
/// the connection's first bytes following the stream's HEADERS without waiting for the
/// answer (the gateway holds them within the stream window until the agent's stream is
/// open). A refusal (or no stream at all) resets the connection — RST, never a FIN the
/// client could take for the service's EOF — and is logged with the gateway's reason.
final class ForwardIngress: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let context: VisitorContext
    private let forward: VisitorConfig.Forward
    private let bridge: StreamSocketBridge

    init(context: VisitorContext, forward: VisitorConfig.Forward, bridge: StreamSocketBridge) {
        self.context = context
        self.forward = forward
        self.bridge = bridge
    }

    static func counterName(_ f: VisitorConfig.Forward) -> String { "forward \(f.listen)" }

    func channelActive(context channelContext: ChannelHandlerContext) {
        channelContext.fireChannelActive()
        let counters = context.stats.listeners.counters(for: Self.counterName(forward))
        counters.connectionsActive.add()
        counters.connectionsTotal.add()
        bridge.meter = ByteMeter(counters: counters, socketIsClient: true)
        let bridgeRef = LoopBoundRef(bridge, eventLoop: channelContext.eventLoop)
        let (visitor, forward) = (context, self.forward)
        let client = channelContext.channel.remoteAddress?.fastgwDescription ?? "?"
        bridge.onClose = { summary in
            counters.connectionsActive.subtract()
            let level: Logger.Level = visitor.config.connection.accessLog ? .info : .debug
            visitor.logger.log(level: level, "forward connection closed", metadata: .event(.connectionClosed, [
                "listen": "\(forward.listen)", "service": "\(forward.service)", "client": "\(client)",
                "bytes_out": "\(summary.bytesFromSocket)", "bytes_in": "\(summary.bytesToSocket)",
                "status": "\(summary.abortReason.map { "aborted: \($0)" } ?? "ok")",
            ]))
        }
        VisitorStreams.open(
            context, service: forward.service, target: forward.target, preferring: channelContext.eventLoop,
            opened: { result in
                switch result {
                case .success(let link):
                    link.run { $0.attach(bridgeRef) }
                    bridgeRef.run { $0.attach(link) }
                case .failure(let refusal):
                    Self.record(visitor, refusal, forward: forward)
                    bridgeRef.run { $0.abort(reset: true) }
                }
            },
            answered: { refusal in
                if let refusal { Self.record(visitor, refusal, forward: forward) }
            })
    }

    private static func record(_ visitor: VisitorContext, _ refusal: VisitorStreams.Refusal, forward: VisitorConfig.Forward) {
        visitor.stats.refused.add(refusal.label)
        visitor.dial.events.record(.visitorStreamRefused(reason: refusal.label), [
            "listen": "\(forward.listen)", "service": "\(forward.service)", "reason": "\(refusal.reason)",
        ])
    }
}
