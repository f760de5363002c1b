import NIOCore
import NIOPosix
import Protocol

#if canImport(Glibc)
import Glibc
#endif

/// First handler of a tunnel connection dialled through an egress proxy: runs the proxy
/// handshake (`EgressProxyHandshake`) on the raw TCP connection, then installs TLS and the
/// tunnel handshake behind itself, hands them the bytes that came with the proxy's answer,
/// and leaves the pipeline, so everything after it runs as on a direct connection. The
/// handshake must be done by the dial's deadline (`DialDeadlinePassed`, GatewayDialer).
final class EgressProxyHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let proxy: EgressProxy
    private let gateway: HostPort
    private let outcome: EventLoopPromise<DialOutcome>
    /// Adds TLS and the tunnel handshake once the path to the gateway is open.
    private let installTunnel: (ChannelPipeline.SynchronousOperations) throws -> Void
    private var handshake: EgressProxyHandshake?
    private var started = false
    private var finished = false
    /// The path is open and the tunnel's handlers follow: whatever still reaches this handler is theirs.
    private var opened = false

    init(
        proxy: EgressProxy, gateway: HostPort, outcome: EventLoopPromise<DialOutcome>,
        installTunnel: @escaping (ChannelPipeline.SynchronousOperations) throws -> Void
    ) {
        self.proxy = proxy
        self.gateway = gateway
        self.outcome = outcome
        self.installTunnel = installTunnel
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { begin(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        begin(context: context)
        context.fireChannelActive()
    }

    private func begin(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        guard EgressProxyHandshake.needsAddress(proxy: proxy, gateway: gateway) else {
            start(context: context, EgressProxyHandshake(proxy: proxy, gateway: gateway))
            return
        }
        // socks5:// sends the gateway's address: resolve it off the event loop.
        let host = gateway.host
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { try Self.resolve(host) }
            .assumeIsolated().whenComplete { result in
                switch result {
                case .success(let address):
                    self.start(context: context, EgressProxyHandshake(proxy: self.proxy, gateway: self.gateway, gatewayAddress: address))
                case .failure(let error):
                    self.fail(context: context, EgressProxyFailure(kind: .unreachable, description:
                        "cannot resolve gateway \(host) to send its address to proxy \(self.proxy.endpoint): \(error) "
                        + "(socks5h:// lets the proxy resolve it)"))
                }
            }
    }

    private func start(context: ChannelHandlerContext, _ handshake: EgressProxyHandshake) {
        guard !finished else { return }
        var h = handshake
        let step = h.start()
        self.handshake = h
        apply(step, context: context)
    }

    /// Still here at the dial's deadline: the proxy has not opened the path in time.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let deadline = event as? DialDeadlinePassed else { return context.fireUserInboundEventTriggered(event) }
        fail(context: context, .timedOut(proxy, seconds: deadline.seconds))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if opened { return context.fireChannelRead(data) }
        guard !finished else { return }
        let bytes = unwrapInboundIn(data)
        guard var h = handshake else {
            fail(context: context, EgressProxyFailure(kind: .protocolViolation, description:
                "proxy \(proxy.endpoint) sent \(bytes.readableBytes) bytes before fastgw asked anything"))
            return
        }
        let step = h.feed(bytes.readableBytesView)
        handshake = h
        apply(step, context: context)
    }

    private func apply(_ step: EgressProxyHandshake.Step, context: ChannelHandlerContext) {
        switch step {
        case .send(let bytes):
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
        case .wait:
            return
        case .connected(let early):
            open(context: context, early: early)
        case .failed(let failure):
            fail(context: context, failure)
        }
    }

    private func open(context: ChannelHandlerContext, early: [UInt8]) {
        finished = true
        do {
            try installTunnel(context.pipeline.syncOperations)
        } catch {
            outcome.succeed(.failed("cannot start TLS after proxy \(proxy.endpoint): \(error)"))
            context.close(promise: nil)
            return
        }
        handshake = nil
        opened = true
        if !early.isEmpty {
            context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: early)))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func fail(context: ChannelHandlerContext, _ failure: EgressProxyFailure) {
        guard !finished else { return }
        finished = true
        outcome.succeed(.proxyFailed(failure))
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard !finished else { return context.fireErrorCaught(error) }
        fail(context: context, EgressProxyFailure(kind: .unreachable, description: "proxy \(proxy.endpoint): \(error)"))
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(context: context, .closed(proxy))
        context.fireChannelInactive()
    }

    /// The first address getaddrinfo gives (the system's preference order, RFC 6724).
    private static func resolve(_ host: String) throws -> IPAddress {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0, let list else { throw StartupError(String(cString: gai_strerror(rc))) }
        defer { freeaddrinfo(list) }
        var next: UnsafeMutablePointer<addrinfo>? = list
        while let info = next {
            if let address = info.pointee.ai_addr, let ip = ipAddress(address) { return ip }
            next = info.pointee.ai_next
        }
        throw StartupError("no IPv4 or IPv6 address")
    }

    private static func ipAddress(_ address: UnsafeMutablePointer<sockaddr>) -> IPAddress? {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: "").ipEndpoint?.address }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: "").ipEndpoint?.address }
        default:
            return nil
        }
    }
}
