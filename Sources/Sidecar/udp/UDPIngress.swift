import CNghttp2
import Logging
import NIOCore
import Protocol

/// A public UDP port of a udp service (DESIGN §10): every client address (ip:port) is one
/// flow, carried by one `connect-udp` stream opened as TCP connections open CONNECT streams
/// (`TCPIngress`), its datagrams in DATAGRAM capsules. The flow table is bounded in total
/// and per client (`[limits] max_udp_flows`, `max_udp_flows_per_ip`); a full table ends its
/// least recently active flows for new clients, a client over its cap is refused, and a
/// client whose flow was refused is dropped for 5 s without new streams; a flow ends after
/// `udp_idle_timeout` without a datagram either way, or when the agent does not answer its
/// stream within `stream_open_timeout`. The socket is never paused: a datagram that cannot
/// go on (no flow allowed, the flow's stream full) is dropped and counted, so flows never
/// hold each other up.
final class UDPIngress: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let gateway: GatewayContext
    private let port: Int
    private let listener: String
    private var flows: UDPFlowTable<SocketAddress, UDPFlow>
    private var sweepTask: RepeatedTask?
    /// Datagrams on their way to tunnel loops, and back to this port's loop (HopLimit).
    private let toTunnel = HopLimit()
    private let toClients = HopLimit()

    init(gateway: GatewayContext, port: Int, listener: String) {
        self.gateway = gateway
        self.port = port
        self.listener = listener
        flows = UDPFlowTable(limits: Self.limits(gateway.settings))
    }

    static func limits(_ settings: GatewayContext.Settings) -> UDPFlowTable<SocketAddress, UDPFlow>.Limits {
        let l = settings.config.limits
        return .init(maxFlows: l.maxUDPFlows, maxFlowsPerClient: l.maxUDPFlowsPerIP, idleTimeout: l.udpIdleTimeout.seconds)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // A quarter of the idle timeout, between 100 ms and 5 s: flows end at most that late.
        let every = TimeAmount.milliseconds(Int64(min(max(flows.limits.idleTimeout / 4, 0.1), 5) * 1000))
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        sweepTask = context.eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in me.value.sweep() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sweepTask?.cancel()
        for flow in flows.removeAll() { flow.withLink { $0.abort() } }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let client = envelope.remoteAddress
        if let flow = flows[client] {
            if !flow.ended.load(ordering: .acquiring) {
                flow.touch()
                guard toTunnel.take() else {
                    gateway.stats.udp.counters(for: flow.service).drops.add("loop_queue")
                    return
                }
                let payload = HopLimit.compact(envelope.data, allocator: context.channel.allocator)
                let hops = toTunnel
                flow.withLink { link in
                    hops.release()
                    link.send(payload)
                }
                return
            }
            // Its stream is over (refused, reset, tunnel gone): a new flow takes its place,
            // unless the agent refused it, which is remembered for a while.
            flows.remove(client)
            if flow.refused.load(ordering: .acquiring) { flows.rememberRefusal(client, now: Self.now) }
        }
        start(client, envelope.data, context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A failed send (an ICMP error for an earlier datagram) concerns one client, not the port.
        gateway.events.record(.udpSocketError, ["listener": "\(listener)", "error": "\(error)"])
    }

    /// Ends flows idle past the timeout, over, or not answered by the agent in time.
    private func sweep() {
        let settings = gateway.settings
        flows.limits = Self.limits(settings)
        let now = Self.now
        let openTimeout = settings.limits.streamOpenTimeout.seconds
        let stale = flows.expire(now: now, lastActive: \.lastActiveSeconds) { flow in
            flow.ended.load(ordering: .acquiring)
                || (!flow.answered.load(ordering: .acquiring) && now - Double(flow.started) / 1e9 > openTimeout)
        }
        for flow in stale {
            if flow.refused.load(ordering: .acquiring) { flows.rememberRefusal(flow.client, now: now) }
            flow.withLink { $0.abort() }
        }
    }

    /// Seconds of uptime, the flow table's clock.
    private static var now: Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

    private func start(_ client: SocketAddress, _ first: ByteBuffer, context: ChannelHandlerContext) {
        let stats = gateway.stats
        let registry = gateway.registry
        guard let key = client.clientKey else { return }
        guard let route = registry.pick(port: port, transport: .udp, preferring: context.eventLoop) else {
            stats.connectFailures.add("no_agent")
            gateway.events.record(.noLiveAgent, [
                "listener": "\(listener)", "port": "udp/\(port)", "client": "\(client.ipEndpoint?.description ?? "?")",
            ])
            return
        }
        let counters = stats.udp.counters(for: route.service)
        if flows.isRefused(client, now: Self.now) {
            registry.streamEnded(route.connection)
            counters.drops.add("refused")
            return
        }
        let admission = flows.admission(client: key)
        if admission == .clientFlowLimit {
            registry.streamEnded(route.connection)
            counters.drops.add(UDPFlowTable<SocketAddress, UDPFlow>.Refusal.clientFlowLimit.rawValue)
            return
        }
        let addresses = ConnectionAddresses(datagramFrom: client, to: context.channel.localAddress)
        let (decision, release) = PolicyEnforcer(gateway: gateway, listener: listener, addresses: addresses)
            .admitFlow(agent: route.agent)
        guard decision == .allow else {
            registry.streamEnded(route.connection)
            counters.drops.add("policy")
            flows.rememberRefusal(client, now: Self.now)
            return
        }
        if admission == .flowLimit {
            // Full: the least recently active flows end so that new clients get in.
            for old in flows.makeRoom(lastActive: \.lastActiveSeconds) {
                stats.udp.counters(for: old.service).flowsEvicted.add()
                old.withLink { $0.abort() }
            }
        }
        let flow = UDPFlow(service: route.service, client: client, loop: route.tunnel.eventLoop, release: release)
        flows.insert(flow, key: client, client: key)
        counters.flowsActive.add()
        counters.flowsTotal.add()
        let opening = Opening(
            gateway: gateway, route: route, flow: flow, counters: counters, channel: context.channel, client: client,
            clientText: addresses.clientDescription, listener: listener,
            headers: ConnectUDP.requestHeaders(service: route.service, port: port) + TunnelAddressFields.of(addresses)
                + [HeaderField("fastgw-listener", listener)])
        let toClients = self.toClients
        let first = HopLimit.compact(first, allocator: context.channel.allocator)
        route.tunnel.run { connection in
            let link = DatagramStreamLink(counters: counters, socketIsClient: true)
            flow.setLink(link)
            opening.open(on: connection, link: link, first: first, toClients: toClients)
        }
    }

    /// Everything the tunnel loop needs to open a flow's stream.
    private struct Opening: Sendable {
        let gateway: GatewayContext
        let route: GatewayRegistry.Route
        let flow: UDPFlow
        let counters: UDPServiceCounters
        let channel: Channel
        let client: SocketAddress
        /// `ip:port`, as logs name clients.
        let clientText: String
        let listener: String
        let headers: [HeaderField]

        func open(on connection: TunnelConnection, link: DatagramStreamLink, first: ByteBuffer, toClients: HopLimit) {
            let registry = gateway.registry
            let stats = gateway.stats
            guard connection.takesNewStreams else {
                if connection.isDraining { registry.markDraining(route.connection) }
                failed("no_agent")
                return
            }
            let (flow, counters, channel, client, route, gateway) = (self.flow, self.counters, self.channel, self.client, self.route, self.gateway)
            let clientText = self.clientText
            link.onHeaders = { [unowned link] fields in
                guard let status = fields[":status"] else { return }
                guard status == "200" else {
                    stats.connectFailures.add(TCPIngress.failureReason(status: status))
                    gateway.events.record(.agentConnectFailed(status: status), [
                        "service": "\(route.service)", "agent": "\(route.agent)", "client": "\(clientText)",
                        "status": "\(status)", "reason": "\(fields["fastgw-reason"] ?? "")",
                    ])
                    flow.refused.store(true, ordering: .releasing)
                    link.abort(code: NGHTTP2_CANCEL.rawValue)
                    return
                }
                flow.answered.store(true, ordering: .releasing)
            }
            link.onActivity = { flow.touch() }
            link.deliver = { datagrams in
                // A full socket buffer drops, as the kernel would: the tunnel is never held.
                guard channel.isWritable else {
                    counters.drops.add("socket_full", datagrams.count)
                    return false
                }
                // Tasks already waiting for the port's loop count too: isWritable only sees
                // what that loop has written.
                guard toClients.take() else {
                    counters.drops.add("loop_queue", datagrams.count)
                    return false
                }
                // One hop to the port's loop and one flush (sendmmsg) for the frame's datagrams.
                channel.eventLoop.execute {
                    toClients.release()
                    for d in datagrams { channel.write(AddressedEnvelope(remoteAddress: client, data: d), promise: nil) }
                    channel.flush()
                }
                return true
            }
            let started = NIODeadline.now()
            let listener = self.listener
            link.onClosed = { code in
                registry.streamEnded(route.connection)
                stats.streamsActive.subtract()
                flow.ended.store(true, ordering: .releasing)
                counters.flowsActive.subtract()
                flow.releasePolicies()
                let access = gateway.settings.config.accessLog
                gateway.logger.log(level: access ? .info : .debug, "udp flow closed", metadata: .event(.connectionClosed, [
                    "service": "\(route.service)", "agent": "\(route.agent)", "client": "\(clientText)", "listener": "\(listener)",
                    "duration_ms": "\((NIODeadline.now() - started).nanoseconds / 1_000_000)",
                    "status": "\(code == 0 ? "ok" : "aborted: HTTP/2 error \(code)")",
                ]))
            }
            do {
                link.bind(connection, stream: try connection.openStream(headers: headers, handler: link))
            } catch {
                gateway.events.record(.streamOpenFailed, ["service": "\(route.service)", "error": "\(error)"])
                failed("stream_open_failed")
                return
            }
            stats.streamsActive.add()
            stats.streamsTotal.add()
            link.send(first)
        }

        /// The stream could not be opened: the flow ends before it began.
        private func failed(_ reason: String) {
            gateway.registry.streamEnded(route.connection)
            gateway.stats.connectFailures.add(reason)
            counters.drops.add(reason)
            flow.ended.store(true, ordering: .releasing)
            counters.flowsActive.subtract()
            flow.releasePolicies()
        }
    }
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
