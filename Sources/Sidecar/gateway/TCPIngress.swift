import Logging
import NIOCore
import Protocol

/// Turns a public TCP connection into a CONNECT stream on a live agent connection serving
/// its port (DESIGN §2.2). With no agent serving the port it closes at once.
final class TCPIngress: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let gateway: GatewayContext
    private let port: Int
    private let listener: String
    private let bridge: StreamSocketBridge

    init(gateway: GatewayContext, port: Int, listener: String, bridge: StreamSocketBridge) {
        self.gateway = gateway
        self.port = port
        self.listener = listener
        self.bridge = bridge
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        let client = context.channel.remoteAddress.map(\.fastgwDescription) ?? "?"
        guard let route = gateway.registry.pick(port: port, preferring: context.eventLoop) else {
            gateway.logger.warning("no live agent serves this port; connection closed", metadata: [
                "listener": "\(listener)", "port": "\(port)", "client": "\(client)",
            ])
            context.close(promise: nil)
            return
        }
        let logger = gateway.logger
        let registry = gateway.registry
        let started = NIODeadline.now()
        bridge.onClose = { summary in
            registry.streamEnded(route.connection)
            logger.debug("tcp connection closed", metadata: [
                "service": "\(route.service)", "agent": "\(route.agent)", "client": "\(client)",
                "bytes_in": "\(summary.bytesFromSocket)", "bytes_out": "\(summary.bytesToSocket)",
                "duration_ms": "\((NIODeadline.now() - started).nanoseconds / 1_000_000)",
                "aborted": "\(summary.abortReason ?? "no")",
            ])
        }
        let bridgeRef = LoopBoundRef(bridge, eventLoop: context.eventLoop)
        let headers = [
            HeaderField(":method", "CONNECT"), HeaderField(":authority", route.service),
            HeaderField("fastgw-client", client), HeaderField("fastgw-listener", listener),
        ]
        route.tunnel.run { connection in
            let link = TunnelStreamLink(connection: connection)
            link.onHeaders = { fields, _ in
                guard let status = fields[":status"], status != "200" else { return }
                logger.warning("agent could not connect the service", metadata: [
                    "service": "\(route.service)", "agent": "\(route.agent)", "client": "\(client)",
                    "status": "\(status)", "reason": "\(fields["fastgw-reason"] ?? "")",
                ])
                // Drop the client at once; the reset also stops its bytes going to the agent.
                link.socketFailed()
            }
            do {
                link.streamID = try connection.openStream(headers: headers, handler: link)
            } catch {
                logger.warning("cannot open tunnel stream", metadata: ["service": "\(route.service)", "error": "\(error)"])
                bridgeRef.run { $0.abort() }
                return
            }
            link.attach(bridgeRef)
            let linkRef = link.ref
            bridgeRef.run { $0.attach(linkRef) }
        }
    }
}
