import NIOCore
import Protocol

/// One public HTTP/1.1 connection: sends each request `HTTP1RequestReader` finds in the input
/// as a request stream to an agent (DESIGN §2.2), and writes the responses back in order
/// (`HTTPServerHandler+Response.swift`). Pipelined requests wait in the reader until the
/// response before them is complete. This file is the request side: channel events, the
/// reader's events, backpressure and timers.
final class HTTPServerHandler: ChannelDuplexHandler, HTTPExchangeOwner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let gateway: GatewayContext
    let listener: String
    let scheme: String
    /// HTTPS: what the handshake chose, checked against each request's host.
    let tls: PublicTLSSession?
    let settings: HTTPSettings
    var context: ChannelHandlerContext?
    var reader: HTTP1RequestReader
    var exchange: HTTPExchange?
    private(set) var readPaused = false
    private var readPending = false
    var timer: DeadlineTimer?
    var lastWrite: EventLoopFuture<Void>?
    private(set) var clientAddress = "?"
    /// Where this connection's requests come from, for their forwarding fields.
    private var hop = ForwardedFields.Hop(peer: nil, trusted: false)
    /// The connection's `TunnelAddressFields`, made once.
    private var addressFields: [HeaderField] = []
    /// The access policies this connection started with, asked about every request.
    private var policy: PolicyEnforcer?
    /// The gateway drains: finish the exchange under way, then close.
    var closeWhenIdle = false
    /// The client half-closed: answer the requests it sent (pipelined ones included), then
    /// close.
    var inputEnded = false
    private var started = false
    /// The first head's deadline, counted from accept (HTTPS: before the TLS handshake).
    private var firstHeadDeadline: NIODeadline?

    init(gateway: GatewayContext, listener: String, tls: PublicTLSSession? = nil, acceptedAt: NIODeadline? = nil) {
        self.gateway = gateway
        self.listener = listener
        self.scheme = tls == nil ? "http" : "https"
        self.tls = tls
        self.settings = gateway.settings.config.http
        self.reader = HTTP1RequestReader(maxHeaderSize: settings.maxHeaderSize, maxBodySize: settings.maxBodySize)
        self.firstHeadDeadline = (acceptedAt ?? .now()) + TimeAmount(settings.headerTimeout)
    }

    // MARK: lifecycle

    /// Over TLS the handler arrives after the handshake, on a channel already active.
    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        let stats = gateway.stats
        stats.publicConnectionsActive.add()
        stats.publicConnectionsTotal.add()
        context.channel.closeFuture.whenComplete { _ in stats.publicConnectionsActive.subtract() }
        let addresses = context.channel.publicAddresses
        clientAddress = addresses.clientDescription
        hop = ForwardedFields.Hop(gateway: gateway, addresses: addresses)
        addressFields = TunnelAddressFields.of(addresses)
        let policy = PolicyEnforcer(gateway: gateway, listener: listener, addresses: addresses)
        self.policy = policy
        // Over its connection limits the client is closed at accept; a denied address gets
        // a 403 for each request instead, which tells a person what happened.
        guard policy.admitConnection(context.channel, addressRules: false) == .allow else {
            context.close(promise: nil)
            return
        }
        timer = DeadlineTimer(
            loop: context.eventLoop,
            step: min(settings.headerTimeout, settings.idleTimeout, settings.responseTimeout))
        armTimer(remainingForFirstHead) { $0.headerTimedOut() }
    }

    /// What is left of the first head's deadline; later heads get `header_timeout` each.
    private var remainingForFirstHead: Duration {
        let left = (firstHeadDeadline ?? .now()) - .now()
        return .nanoseconds(max(left.nanoseconds, 0))
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.stop()
        if let ex = exchange, !ex.responseComplete {
            ex.abort()
            finishLog(ex, outcome: "client closed the connection")
        }
        exchange = nil
        reader.stop()
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is HTTPDrainNotice {
            closeWhenIdle = true
            if exchange == nil { closeNow() }
            return
        }
        if case ChannelEvent.inputClosed = event {
            // A client that half-closes after its requests still gets the responses; one
            // that stops in the middle of a body has cut its request short.
            inputEnded = true
            guard let ex = exchange else { return closeAfterWrites() }
            switch reader.state {
            case .body:
                ex.abort()
                finishLog(ex, outcome: "client closed the connection during the request body")
                exchange = nil
                closeNow()
            case .passThrough where !ex.requestEnded:
                ex.endBody(trailers: [])  // the upstream gets the half-close
            default:
                break
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        reader.append(&bytes)
        if reader.isReadingBody { armBodyTimer() }
        process()
    }

    func read(context: ChannelHandlerContext) {
        if readPaused || inputBacklogged { readPending = true } else { context.read() }
    }

    private var inputBacklogged: Bool {
        reader.holdsBackInput(streamOpen: exchange?.isAttached == true)
    }

    /// The tunnel cannot take more of the body for now: stop reading (and stop the body
    /// timer: the wait is not the client's).
    func pauseReading() {
        readPaused = true
        if reader.isReadingBody { timer?.cancel() }
    }

    func resumeReading() {
        if reader.isReadingBody, readPaused { armBodyTimer() }
        readPaused = false
        if readPending, !inputBacklogged, let context {
            readPending = false
            context.read()
        }
    }

    /// Acts on everything the reader finds in the input: heads, bodies, pipelined requests.
    func process() {
        while let event = reader.next(streamOpen: exchange?.isAttached == true) {
            switch event {
            case .headStarted:
                // The first head's deadline runs from accept, not from its first byte.
                if firstHeadDeadline == nil { armTimer(settings.headerTimeout) { $0.headerTimedOut() } }
            case .head(let head):
                firstHeadDeadline = nil
                timer?.cancel()
                begin(head)
            case .bodyData(let bytes), .passThrough(let bytes):
                exchange?.sendBody(bytes)
            case .bodyEnd(let trailers):
                exchange?.endBody(trailers: HopByHop.forwardedTrailers(trailers))
            case .refused(let status, let reason):
                guard let ex = exchange else { return refuse(status: status, reason: reason) }
                ex.abort()
                return refuseMidBody(ex, status: status, reason: reason)
            }
        }
        // The whole request is with the agent: its answer is due within response_timeout.
        if reader.requestRead, let ex = exchange, ex.isAttached, ex.response == nil, !ex.waitingForResponse {
            ex.waitingForResponse = true
            armTimer(settings.responseTimeout) { $0.responseTimedOut(ex) }
        }
        // The client sent all it will: what is left of a head never completes.
        if inputEnded, exchange == nil, case .head = reader.state { closeAfterWrites() }
    }

    /// Whether the connection may carry another exchange after the current one. After a
    /// half-close only the requests already buffered are left.
    var keepsConnection: Bool {
        !closeWhenIdle && !gateway.isDraining && !(inputEnded && reader.bufferedBytes == 0)
    }

    // MARK: starting an exchange

    /// Starts the exchange for a request head, or answers it at once (refused, no route).
    private func begin(_ head: HTTPHead) {
        let requestID = RequestID.make()
        let request: PublicRequest
        switch PublicRequest.parse(head) {
        case .success(let r): request = r
        case .failure(let refusal):
            return refuse(status: refusal.status, reason: refusal.reason, requestID: requestID, head: head)
        }
        let ex = HTTPExchange(requestID: requestID, request: request)
        ex.owner = self
        gateway.stats.httpRequestsTotal.add()
        if answersAcmeChallenge(ex) { return }
        let loop = context!.eventLoop
        switch ex.routing(gateway: gateway, tls: tls, loop: loop, policy: policy, hop: hop) {
        case .failure(let refusal):
            answer(ex, refusal)
        case .success(let route):
            exchange = ex
            reader.expectBody(request.framing)
            if request.framing == .none && request.upgrade == nil { ex.requestHadNoBody() }
            // Until the stream opens the reader holds the body back; reading pauses too, so
            // the body timer does not run while the gateway waits (an authentication check,
            // the stream's opening). `exchangeAttached` resumes.
            pauseReading()
            let gateway = self.gateway
            ex.authenticate(route, gateway: gateway, policy: policy, scheme: scheme, loop: loop) { [weak self] refusal in
                guard let self, ex === self.exchange, self.context != nil else {
                    if refusal == nil { ex.abandon(route, gateway: gateway) }
                    return
                }
                if let refusal { return self.failed(ex, refusal) }
                ex.open(route, gateway: self.gateway, scheme: self.scheme, hop: self.hop, addressFields: self.addressFields, loop: loop)
            }
        }
    }

    /// The stream is open: the body may flow, and a client waiting for 100 may send it.
    func exchangeAttached(_ ex: HTTPExchange) {
        guard ex === exchange, context != nil else {
            ex.abort()
            return
        }
        let service = gateway.stats.services.counters(for: ex.route?.service ?? "")
        service.connectionsTotal.add()
        ex.counters = service
        if ex.request.expectsContinue, ex.response == nil, reader.isReadingBody {
            write(ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n"), flush: true)
        }
        if reader.isReadingBody { armBodyTimer() }
        resumeReading()
        process()
    }

    // MARK: timers

    func armTimer(_ after: Duration, _ fire: @escaping (HTTPServerHandler) -> Void) {
        timer?.arm(after: after) { [weak self] in
            if let self { fire(self) }
        }
    }

    /// A client must keep a request body moving: `idle_timeout` without a byte is 408.
    private func armBodyTimer() {
        armTimer(settings.idleTimeout) { $0.bodyTimedOut() }
    }

    private func bodyTimedOut() {
        guard reader.isReadingBody, let ex = exchange, !readPaused else { return }
        ex.abort()
        refuseMidBody(ex, status: 408, reason: "the request body stalled for \(settings.idleTimeout)")
    }

    func headerTimedOut() {
        guard exchange == nil, case .head = reader.state else { return }
        if reader.bufferedBytes > 0 {
            refuse(status: 408, reason: "the request head did not arrive within \(settings.headerTimeout)")
        } else {
            closeNow()  // an idle keep-alive connection: close quietly
        }
    }

    private func responseTimedOut(_ ex: HTTPExchange) {
        guard ex === exchange, ex.response == nil else { return }
        ex.abort()
        exchangeFailed(ex, status: 504, reason: "the agent did not answer within \(settings.responseTimeout)")
    }
}

/// Sent down every public HTTP connection's pipeline when the gateway drains.
struct HTTPDrainNotice: Sendable {}
