import CNghttp2
import NIOCore
import NIOPosix
import Protocol

/// The agent's side of a UDP flow: one connected UDP socket to the service's upstream per
/// `connect-udp` stream, on the tunnel connection's loop, closed when the stream ends. The
/// stream is answered 200 once the socket is connected (a local operation: nothing is sent);
/// datagrams that arrive before are held (`DatagramStreamLink.maxHeld`).
enum AgentUDPFlow {
    static func open(
        _ service: AgentConfig.Service, agent: AgentContext, connection: TunnelConnection, id: Int32,
        headers: [HeaderField], refuse: @escaping (Int, String) -> Void
    ) -> TunnelStreamHandler {
        let stats = agent.stats
        let counters = stats.udp.counters(for: service.name)
        let link = DatagramStreamLink(counters: counters, socketIsClient: false)
        link.bind(connection, stream: id)
        let loop = connection.eventLoop!
        let linkRef = LoopBoundRef(link, eventLoop: loop)
        let socket = SocketHolder()
        stats.streamsActive.add()
        counters.flowsActive.add()
        counters.flowsTotal.add()
        link.onClosed = { _ in
            stats.streamsActive.subtract()
            counters.flowsActive.subtract()
            socket.channel?.close(promise: nil)
            socket.channel = nil
            socket.closed = true
        }
        let client = headers["fastgw-client"] ?? "?"
        let events = agent.events
        let conn = NIOLoopBound(connection, eventLoop: loop)
        address(of: service.upstream, on: loop).flatMap { address in
            DatagramBootstrap(group: loop)
                .channelOption(.socketOption(.so_rcvbuf), value: 1 << 20)
                // Room for the largest datagram: NIO's default (2 KiB) would truncate bigger ones.
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UpstreamDatagramHandler(link: linkRef, counters: counters))
                    }
                }
                .connect(to: address)
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard !socket.closed else {
                    channel.close(promise: nil)
                    return
                }
                socket.channel = channel
                link.deliver = { datagrams in
                    guard channel.isWritable else {
                        counters.drops.add("socket_full", datagrams.count)
                        return false
                    }
                    for d in datagrams { channel.write(d, promise: nil) }
                    channel.flush()
                    return true
                }
                conn.value.respond(stream: id, headers: [HeaderField(":status", "200"), HeaderField("capsule-protocol", "?1")], endStream: false)
            case .failure(let error):
                let (status, reason) = AgentTunnel.classify(error, upstream: service.upstream)
                stats.connectFailures.add(TCPIngress.failureReason(status: String(status)))
                events.record(.upstreamConnectFailed(status: status), [
                    "service": "\(service.name)", "client": "\(client)", "status": "\(status)", "reason": "\(reason)",
                ])
                if !socket.closed { refuse(status, reason) }
            }
        }
        return link
    }

    /// A numeric upstream at once; a host name through `BoundedResolver` (off the event loop,
    /// capped in flight, cached briefly: not a lookup per flow).
    private static func address(of upstream: UpstreamAddress, on loop: EventLoop) -> EventLoopFuture<SocketAddress> {
        guard case .tcp(let hp) = upstream else {
            return loop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        if let numeric = try? SocketAddress(ipAddress: hp.host, port: hp.port) { return loop.makeSucceededFuture(numeric) }
        return BoundedResolver.shared.resolve(hp, from: .configured, on: loop).flatMapThrowing { all in
            guard let first = all.first else { throw NetworkTarget.Refusal.unresolvable("\(hp.host) has no address") }
            return first
        }
    }

    /// The flow's socket, once connected; `closed` when the stream ended first.
    private final class SocketHolder: @unchecked Sendable {
        // Touched on the tunnel connection's loop only (the socket shares it).
        var channel: Channel?
        var closed = false
    }
}

/// Reads the upstream's datagrams into the flow's stream. Errors (an ICMP port unreachable
/// for an earlier datagram) are counted and the socket stays: UDP peers come and go.
final class UpstreamDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let link: LoopBoundRef<DatagramStreamLink>
    private let counters: UDPServiceCounters

    init(link: LoopBoundRef<DatagramStreamLink>, counters: UDPServiceCounters) {
        self.link = link
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data).data
        link.run { $0.send(payload) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        counters.drops.add("upstream_error")
    }
}
