import Logging
import NIOCore
import Protocol

/// One local SOCKS5 client (RFC 1928 CONNECT, RFC 1929 when `socks5_users` is set): the
/// negotiation runs through `Socks5Server` under a deadline, the destination is judged by
/// `VisitorDestination`, and once the gateway answers the stream the reply is written and a
/// `StreamSocketBridge` takes the connection over. Reads stop while the answer is awaited,
/// so a client cannot make it hold more than one SOCKS message; bytes the client sent behind
/// its request in the same read are kept (one read per wake-up while negotiating, so at most
/// one read buffer, `maxEarlyBytes`) and go first on the stream, followed by the client's
/// half-close if it came meanwhile. Wrong RFC 1929 credentials are answered after
/// `authFailureDelay` and count against the client's address (`VisitorContext.socksThrottle`):
/// a blocked address is answered as a wrong password without a check, also on connections
/// it opened before the block.
final class Socks5Handler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The greeting, authentication and request must all arrive within this.
    static let negotiationTimeout = TimeAmount.seconds(10)
    /// How long a wrong user/password waits for its answer (one guess per second per connection).
    static let authFailureDelay = TimeAmount.seconds(1)
    /// Bytes kept from behind the request while the stream opens: reads are stopped and one
    /// read per wake-up is allowed while negotiating, so this is one read buffer at most
    /// (`SocketTuning.recvAllocator`'s maximum).
    static let maxEarlyBytes = 256 * 1024
    /// NIO's reads per wake-up, given back once the bridge carries the connection.
    private static let maxMessagesPerRead: UInt = 4

    private let visitor: VisitorContext
    private let listen: HostPort
    private var server: Socks5Server
    private var deadline: Scheduled<Void>?
    private var waiting = false
    private var readPending = false
    private var done = false
    private var link: LoopBoundRef<StreamSocketBridge.Link>?
    private var rest: [UInt8] = []
    /// The client's address for the login throttle (nil: not an IP client).
    private var client: ClientKey?
    /// The address was blocked when the connection came: no password is checked.
    private var throttled = false
    /// The client half-closed before the reply: passed on after its early bytes.
    private var inputClosed = false

    init(visitor: VisitorContext, listen: HostPort) {
        self.visitor = visitor
        self.listen = listen
        server = Socks5Server(users: visitor.config.socks5Users)
    }

    static func counterName(_ listen: HostPort) -> String { "socks5 \(listen)" }

    func handlerAdded(context: ChannelHandlerContext) {
        client = context.channel.remoteAddress?.clientKey
        checkThrottle()
        // One read per wake-up: what lands behind the request is one read buffer at most.
        try? context.channel.syncOptions?.setOption(.maxMessagesPerRead, value: 1)
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: Self.negotiationTimeout) {
            me.value.fail(context: ctx.value, label: "timeout", reason: "no complete SOCKS5 request within 10 s", reply: [])
        }
    }

    /// A blocked address gets no user matched: the client learns nothing, not even that it is
    /// blocked. Checked at accept and again before every read is judged, so connections
    /// opened before the block cannot each still carry a guess.
    private func checkThrottle() {
        guard !throttled, visitor.config.socks5Users != nil, let client,
              case .blocked = visitor.socksThrottle.withLockedValue({ $0.check(client, now: RepeatedEvents.now) })
        else { return }
        throttled = true
        server.refuseAllCredentials()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        let bytes = unwrapInboundIn(data)
        if waiting {
            // Sent behind the request before its reply: it goes first on the stream.
            guard rest.count + bytes.readableBytes <= Self.maxEarlyBytes else {
                return fail(context: context, label: "too_much_early_data", reason: "more than \(Self.maxEarlyBytes) bytes before the reply", reply: [])
            }
            rest += bytes.readableBytesView
            return
        }
        checkThrottle()
        switch server.feed(bytes.readableBytesView) {
        case .needMore(let send):
            if !send.isEmpty { context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: send)), promise: nil) }
        case .refused(let send, let reason) where reason == Socks5Server.wrongCredentials:
            loginFailed(context: context, reply: send)
        case .refused(let send, let reason):
            let label = reason.contains("password") ? "auth" : "protocol"
            fail(context: context, label: label, reason: reason, reply: send)
        case .request(let request, let send, let rest):
            if !send.isEmpty { context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: send)), promise: nil) }
            if visitor.config.socks5Users != nil, let client { visitor.socksThrottle.withLockedValue { $0.succeeded(client) } }
            deadline?.cancel()
            waiting = true
            self.rest = rest
            connect(context: context, request)
        }
    }

    /// Wrong credentials: counted against the address, logged counted, answered late.
    private func loginFailed(context: ChannelHandlerContext, reply: [UInt8]) {
        deadline?.cancel()
        waiting = true
        var blockedFor: Duration?
        if !throttled, let client {
            blockedFor = visitor.socksThrottle.withLockedValue { $0.failed(client, now: RepeatedEvents.now) }
        }
        visitor.dial.events.record(.socksAuthRefused(blocked: throttled), [
            "listen": "\(listen)", "client": "\(context.channel.remoteAddress?.fastgwDescription ?? "?")",
            "blocked_for": "\(blockedFor.map { "\($0)" } ?? "")",
        ])
        let label = throttled ? "auth_blocked" : "auth"
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: Self.authFailureDelay) {
            me.value.fail(context: ctx.value, label: label, reason: Socks5Server.wrongCredentials, reply: reply)
        }
    }

    func read(context: ChannelHandlerContext) {
        if waiting { readPending = true } else { context.read() }
    }

    private func connect(context: ChannelHandlerContext, _ request: Socks5Server.Request) {
        let service: String
        var target: String?
        switch VisitorDestination.decide(request, network: visitor.config.socks5Network) {
        case .refused(let code, let reason):
            return refuse(context: context, VisitorStreams.Refusal(label: code == .notAllowed ? "not_allowed" : "bad_destination", reason: reason, reply: code), destination: request.host)
        case .service(let s):
            service = s
        case .network(let s, let t):
            service = s
            target = t
        }
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let destination = request.isDomain ? "\(request.host):\(request.port)" : target ?? request.host
        VisitorStreams.open(
            visitor, service: service, target: target, preferring: loop,
            opened: { result in
                loop.execute {
                    switch result {
                    case .success(let link): me.value.opened(context: ctx.value, link)
                    case .failure(let refusal): me.value.refuse(context: ctx.value, refusal, destination: destination)
                    }
                }
            },
            answered: { refusal in
                loop.execute {
                    if let refusal { me.value.refuse(context: ctx.value, refusal, destination: destination) } else { me.value.accepted(context: ctx.value) }
                }
            })
    }

    private func opened(context: ChannelHandlerContext, _ link: LoopBoundRef<StreamSocketBridge.Link>) {
        self.link = link
        // The client left while the stream was being opened.
        if done { link.run { $0.socketFailed() } }
    }

    /// 200: the reply, then the bridge carries the connection (what the client sent early first).
    private func accepted(context: ChannelHandlerContext) {
        guard !done, let link else { return }
        done = true
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: Socks5Server.reply(.succeeded))), promise: nil)
        let counters = visitor.stats.listeners.counters(for: Self.counterName(listen))
        counters.connectionsActive.add()
        counters.connectionsTotal.add()
        let bridge = StreamSocketBridge(link: nil)
        bridge.meter = ByteMeter(counters: counters, socketIsClient: true)
        bridge.onClose = { _ in counters.connectionsActive.subtract() }
        do {
            try context.pipeline.syncOperations.addHandler(bridge)
        } catch {
            link.run { $0.socketFailed() }
            context.close(promise: nil)
            return
        }
        if !rest.isEmpty { context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: rest))) }
        rest = []
        // Like `nc -N`: request, payload, half-close, then the answer is read.
        if inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        try? context.channel.syncOptions?.setOption(.maxMessagesPerRead, value: Self.maxMessagesPerRead)
        let channel = context.channel
        let bridgeRef = LoopBoundRef(bridge, eventLoop: context.eventLoop)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        link.run { $0.attach(bridgeRef) }
        bridge.attach(link)
        channel.read()
    }

    private func refuse(context: ChannelHandlerContext, _ refusal: VisitorStreams.Refusal, destination: String) {
        guard !done else { return }
        visitor.stats.refused.add(refusal.label)
        visitor.dial.events.record(.visitorStreamRefused(reason: refusal.label), [
            "listen": "\(listen)", "destination": "\(destination)", "reason": "\(refusal.reason)",
        ])
        fail(context: context, label: nil, reason: refusal.reason, reply: Socks5Server.reply(refusal.reply))
    }

    /// Writes `reply` (if any) and closes; `label` counts a failed negotiation.
    private func fail(context: ChannelHandlerContext, label: String?, reason: String, reply: [UInt8]) {
        guard !done else { return }
        done = true
        deadline?.cancel()
        if let label {
            visitor.stats.socksFailures.add(label)
            visitor.logger.debug("SOCKS5 client refused", metadata: ["listen": "\(listen)", "reason": "\(reason)"])
        }
        link?.run { $0.socketFailed() }
        guard !reply.isEmpty else { return context.close(promise: nil) }
        BoundedClose.close(context.channel, after: context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: reply))))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else { return context.fireUserInboundEventTriggered(event) }
        // Before a complete request the negotiation cannot finish; its deadline closes it.
        inputClosed = true
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            link?.run { $0.socketFailed() }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
