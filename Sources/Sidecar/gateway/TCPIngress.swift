import Logging
import NIOCore
import Protocol
import Synchronization

/// Turns a public TCP connection into a CONNECT stream on a live agent connection serving
/// its port (DESIGN §2.2). With no agent serving the port it closes at once; an agent that
/// does not answer the stream within `[limits] stream_open_timeout` gets it reset and the
/// client is closed, so no public connection waits on an agent for ever.
final class TCPIngress: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// Connections found draining between the pick and the stream's opening are skipped;
    /// after this many the client is dropped.
    private static let maxAttempts = 4

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
        let stats = gateway.stats
        stats.publicConnectionsActive.add()
        stats.publicConnectionsTotal.add()
        context.channel.closeFuture.whenComplete { _ in stats.publicConnectionsActive.subtract() }
        let addresses = context.channel.publicAddresses
        let client = addresses.clientDescription
        // Refused by an access policy: closed before any agent hears of it.
        let policy = PolicyEnforcer(gateway: gateway, listener: listener, addresses: addresses)
        guard policy.admitConnection(context.channel, addressRules: true) == .allow else {
            context.close(promise: nil)
            return
        }
        guard let route = gateway.registry.pick(port: port, preferring: context.eventLoop) else {
            stats.connectFailures.add("no_agent")
            gateway.events.record(.noLiveAgent, ["listener": "\(listener)", "port": "\(port)", "client": "\(client)"])
            context.close(promise: nil)
            return
        }
        // The port's [[route_policy]] and the serving agent's policies, still before any stream.
        guard policy.admitTCP(context.channel, port: port, agent: route.agent) == .allow else {
            gateway.registry.streamEnded(route.connection)
            context.close(promise: nil)
            return
        }
        let bridgeRef = LoopBoundRef(bridge, eventLoop: context.eventLoop)
        let answer = StreamAnswer()
        Self.open(route, attempt: 1, excluding: [], stream: StreamOpening(
            gateway: gateway, port: port, listener: listener, client: client, pinsAgent: policy.set.pinsAgent,
            addressFields: TunnelAddressFields.of(addresses), bridge: bridgeRef,
            loop: context.eventLoop, answer: answer,
            bandwidth: policy.bandwidth(port: port, agent: route.agent, service: route.service)))
        let (gateway, listener, port) = (self.gateway, self.listener, self.port)
        let deadline = context.eventLoop.scheduleTask(in: TimeAmount(gateway.settings.limits.streamOpenTimeout)) {
            guard !answer.received.load(ordering: .acquiring) else { return }
            stats.connectFailures.add("agent_timeout")
            gateway.events.record(.streamOpenTimedOut, ["listener": "\(listener)", "port": "\(port)", "client": "\(client)"])
            bridgeRef.run { $0.abandon("the agent did not answer the stream in time") }
        }
        context.channel.closeFuture.whenComplete { _ in deadline.cancel() }
    }

    /// Set on the tunnel loop when the agent answers the stream; read on the socket loop.
    private final class StreamAnswer: Sendable {
        let received = Atomic(false)
    }

    /// Everything needed to open (or re-open) the stream from any loop.
    private struct StreamOpening: Sendable {
        let gateway: GatewayContext
        let port: Int
        let listener: String
        let client: String
        /// The policies the connection was admitted under have agent grants: a retry stays
        /// with the agent whose policies were checked.
        let pinsAgent: Bool
        let addressFields: [HeaderField]
        let bridge: LoopBoundRef<StreamSocketBridge>
        let loop: EventLoop
        let answer: StreamAnswer
        /// When the client's connection arrived, for the stream-open histogram.
        let acceptedAt = NIODeadline.now()
        /// The policies' `bandwidth` caps on this connection, if any.
        let bandwidth: BandwidthCaps?

        var headers: (String) -> [HeaderField] {
            { [addressFields, listener] service in
                [HeaderField(":method", "CONNECT"), HeaderField(":authority", service)]
                    + addressFields + [HeaderField("fastgw-listener", listener)]
            }
        }
    }

    private static func open(
        _ route: GatewayRegistry.Route, attempt: Int, excluding: Set<GatewayRegistry.ConnectionID>, stream s: StreamOpening
    ) {
        route.tunnel.run { connection in
            let registry = s.gateway.registry
            // The agent may have sent GOAWAY after the pick, or be at its stream limit: try
            // another connection.
            if !connection.takesNewStreams {
                registry.streamEnded(route.connection)
                if connection.isDraining { registry.markDraining(route.connection) }
                let skip = excluding.union([route.connection])
                let agent = s.pinsAgent ? route.agent : nil
                if attempt < maxAttempts, let next = registry.pick(port: s.port, preferring: s.loop, excluding: skip, agent: agent) {
                    open(next, attempt: attempt + 1, excluding: skip, stream: s)
                } else {
                    s.gateway.stats.connectFailures.add("no_agent")
                    s.gateway.events.record(.noLiveAgent, ["listener": "\(s.listener)", "port": "\(s.port)", "client": "\(s.client)"])
                    s.bridge.run { $0.abort() }
                }
                return
            }
            start(route, on: connection, stream: s)
        }
    }

    private static func start(_ route: GatewayRegistry.Route, on connection: TunnelConnection, stream s: StreamOpening) {
        let stats = s.gateway.stats
        let logger = s.gateway.logger
        let registry = s.gateway.registry
        let service = stats.services.counters(for: route.service)
        let client = s.client
        let link = StreamSocketBridge.Link(connection: connection)
        link.onHeaders = { fields, _ in
            s.answer.received.store(true, ordering: .releasing)
            service.streamOpen.observe(since: s.acceptedAt)
            guard let status = fields[":status"], status != "200" else { return }
            stats.connectFailures.add(failureReason(status: status))
            s.gateway.events.record(.agentConnectFailed(status: status), [
                "service": "\(route.service)", "agent": "\(route.agent)", "client": "\(client)",
                "status": "\(status)", "reason": "\(fields["fastgw-reason"] ?? "")",
            ])
            // Drop the client at once; the reset also stops its bytes going to the agent.
            link.socketFailed()
        }
        do {
            link.streamID = try connection.openStream(headers: s.headers(route.service), handler: link)
        } catch {
            registry.streamEnded(route.connection)
            stats.connectFailures.add("stream_open_failed")
            s.gateway.events.record(.streamOpenFailed, ["service": "\(route.service)", "error": "\(error)"])
            s.bridge.run { $0.abort() }
            return
        }
        stats.streamsActive.add()
        stats.streamsTotal.add()
        service.connectionsActive.add()
        service.connectionsTotal.add()
        link.attach(s.bridge)
        let linkRef = link.ref
        let streamID = link.streamID
        let started = NIODeadline.now()
        s.bridge.run { bridge in
            bridge.meter = ByteMeter(counters: service, socketIsClient: true)
            if let caps = s.bandwidth { bridge.pace(caps, loop: s.loop) }
            bridge.onClose = { summary in
                registry.streamEnded(route.connection)
                stats.streamsActive.subtract()
                service.connectionsActive.subtract()
                // The access record: journald rate-limits, so only when `[log] access` asks for it.
                let access = s.gateway.settings.config.accessLog
                logger.log(level: access ? .info : .debug, "tcp connection closed", metadata: .event(.connectionClosed, [
                    "service": "\(route.service)", "agent": "\(route.agent)", "client": "\(client)",
                    "listener": "\(s.listener)", "stream": "\(streamID)",
                    "bytes_in": "\(summary.bytesFromSocket)", "bytes_out": "\(summary.bytesToSocket)",
                    "duration_ms": "\((NIODeadline.now() - started).nanoseconds / 1_000_000)",
                    "status": "\(summary.abortReason.map { "aborted: \($0)" } ?? "ok")",
                ]))
            }
            bridge.attach(linkRef)
        }
    }

    static func failureReason(status: String) -> String {
        switch status {
        case "404": return "unknown_service"
        case "502": return "upstream_unreachable"
        case "504": return "upstream_timeout"
        case "403": return "destination_not_allowed"
        default: return "agent_status_\(status)"
        }
    }
}
