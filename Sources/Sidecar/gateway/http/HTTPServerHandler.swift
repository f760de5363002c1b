import NIOCore
import Protocol

/// One public HTTP/1.1 connection: reads request heads and bodies, sends each request as a
/// request stream to an agent (DESIGN §2.2), and writes the responses back in order.
/// Pipelined requests wait in the input buffer until the response before them is complete.
final class HTTPServerHandler: ChannelDuplexHandler, HTTPExchangeOwner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        /// Waiting for, or reading, a request head.
        case head
        /// Reading the current request's body.
        case body(BodyDecoder)
        /// The request is read; its response is still coming.
        case responding
        /// Upgraded (101 sent): bytes flow as they are, both ways, until either side ends.
        case tunnel
        /// The connection closes once the last write is done.
        case closing
    }

    let gateway: GatewayContext
    let listener: String
    let scheme: String
    /// HTTPS: what the handshake chose, checked against each request's host.
    let tls: PublicTLSSession?
    let settings: HTTPSettings
    private var context: ChannelHandlerContext?
    private var inbound: ByteBuffer?
    /// How far the input was searched for the end of a head.
    private var scanned = 0
    private var phase = Phase.head
    private(set) var exchange: HTTPExchange?
    private var readPaused = false
    private var readPending = false
    private var timer: DeadlineTimer?
    private var lastWrite: EventLoopFuture<Void>?
    private var clientAddress = "?"
    private var clientIP = "?"
    /// The gateway drains: finish the exchange under way, then close.
    private var closeWhenIdle = false
    private var started = false

    init(gateway: GatewayContext, listener: String, tls: PublicTLSSession? = nil) {
        self.gateway = gateway
        self.listener = listener
        self.scheme = tls == nil ? "http" : "https"
        self.tls = tls
        self.settings = gateway.settings.config.http
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
        if let remote = context.channel.remoteAddress {
            clientAddress = remote.fastgwDescription
            clientIP = remote.ipAddress ?? clientAddress
        }
        timer = DeadlineTimer(
            loop: context.eventLoop,
            step: min(settings.headerTimeout, settings.idleTimeout, settings.responseTimeout))
        armTimer(settings.headerTimeout) { $0.headerTimedOut() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.stop()
        if let ex = exchange, !ex.responseComplete {
            ex.abort()
            finishLog(ex, outcome: "client closed the connection")
        }
        exchange = nil
        phase = .closing
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
            // A client that half-closes after its request still gets the response; one
            // that stops in the middle of a body has cut its request short.
            closeWhenIdle = true
            if exchange == nil {
                closeNow()
            } else if case .body = phase, let ex = exchange {
                ex.abort()
                finishLog(ex, outcome: "client closed the connection during the request body")
                exchange = nil
                closeNow()
            } else if case .tunnel = phase, let ex = exchange, !ex.requestEnded {
                ex.endBody(trailers: [])  // the upstream gets the half-close
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if inbound == nil || inbound!.readableBytes == 0 {
            inbound = bytes
        } else {
            inbound!.writeBuffer(&bytes)
        }
        if case .body = phase { armBodyTimer() }
        process()
    }

    func read(context: ChannelHandlerContext) {
        if readPaused || inputBacklogged { readPending = true } else { context.read() }
    }

    /// Pipelined input waiting behind a response is bounded by the header limit; a body is
    /// not read before its stream is open.
    private var inputBacklogged: Bool {
        switch phase {
        case .responding: return (inbound?.readableBytes ?? 0) > settings.maxHeaderSize
        case .body, .tunnel: return exchange?.isAttached != true
        default: return false
        }
    }

    /// The tunnel cannot take more of the body for now: stop reading (and stop the body
    /// timer: the wait is not the client's).
    func pauseReading() {
        readPaused = true
        if case .body = phase { timer?.cancel() }
    }

    func resumeReading() {
        if case .body = phase, readPaused { armBodyTimer() }
        readPaused = false
        if readPending, !inputBacklogged, let context {
            readPending = false
            context.read()
        }
    }

    /// Moves through the input as far as it goes: heads, bodies, pipelined requests.
    private func process() {
        while true {
            switch phase {
            case .closing:
                return
            case .responding:
                if let ex = exchange, ex.isAttached, ex.response == nil, !ex.waitingForResponse {
                    ex.waitingForResponse = true
                    armTimer(settings.responseTimeout) { $0.responseTimedOut(ex) }
                }
                return
            case .head:
                guard exchange == nil, readHead() else { return }
            case .tunnel:
                guard let ex = exchange, var buffer = inbound, buffer.readableBytes > 0 else { return }
                ex.sendBody(buffer.readSlice(length: buffer.readableBytes)!)
                inbound = buffer
                return
            case .body(var decoder):
                guard let ex = exchange, ex.isAttached, var buffer = inbound, buffer.readableBytes > 0 else { return }
                let result: (events: [BodyDecoder.Event], consumed: Int)
                do {
                    result = try decoder.feed(buffer.readableBytesView)
                } catch {
                    ex.abort()
                    return refuseMidBody(ex, status: 400, reason: "malformed chunked body: \(error.reason)")
                }
                for event in result.events {
                    switch event {
                    case .data(let range):
                        ex.sendBody(buffer.getSlice(at: range.lowerBound, length: range.count)!)
                    case .end(let trailers):
                        ex.endBody(trailers: HopByHop.forwardedTrailers(trailers))
                    }
                }
                buffer.moveReaderIndex(to: result.consumed)
                inbound = buffer
                if let limit = settings.maxBodySize, decoder.bodyBytes > Int64(limit) {
                    ex.abort()
                    return refuseMidBody(ex, status: 413, reason: "request body is over the limit of \(limit) bytes")
                }
                phase = decoder.isComplete ? .responding : .body(decoder)
                if case .body = phase { return }
            }
        }
    }

    /// Takes one request head off the input and starts its exchange. False when the head is
    /// not complete yet (or the connection is being closed).
    private func readHead() -> Bool {
        guard var buffer = inbound else { return false }
        // RFC 9112 §2.2: empty lines before a request line are ignored.
        while scanned == 0, let b = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), b == 13 || b == 10 {
            buffer.moveReaderIndex(forwardBy: 1)
        }
        inbound = buffer
        guard buffer.readableBytes > 0 else { return false }
        let end = buffer.withUnsafeReadableBytes { HTTPHeadParser.headEnd(in: $0, from: scanned - 3) }
        guard let end, end <= settings.maxHeaderSize else {
            if buffer.readableBytes > settings.maxHeaderSize || end != nil {
                refuse(status: 431, reason: "request head is over the limit of \(settings.maxHeaderSize) bytes")
                return false
            }
            // The head's first bytes are here and its end is not: header_timeout runs from now.
            if scanned == 0 { armTimer(settings.headerTimeout) { $0.headerTimedOut() } }
            scanned = buffer.readableBytes
            return false
        }
        let headBytes = buffer.readSlice(length: end)!
        inbound = buffer
        scanned = 0
        timer?.cancel()
        guard let head = headBytes.withUnsafeReadableBytes({ HTTPHeadParser.parse(bytes: $0) }) else {
            refuse(status: 400, reason: "malformed request head")
            return false
        }
        return begin(head)
    }

    // MARK: starting an exchange

    private func begin(_ head: HTTPHead) -> Bool {
        let requestID = RequestID.make()
        let request: PublicRequest
        switch PublicRequest.parse(head) {
        case .success(let r): request = r
        case .failure(let refusal):
            refuse(status: refusal.status, reason: refusal.reason, requestID: requestID, head: head)
            return false
        }
        let ex = HTTPExchange(requestID: requestID, request: request)
        ex.owner = self
        gateway.stats.httpRequestsTotal.add()
        let loop = context!.eventLoop
        switch ex.routing(gateway: gateway, tls: tls, loop: loop) {
        case .failure(let refusal):
            return answer(ex, status: refusal.status, reason: refusal.reason)
        case .success(let route):
            exchange = ex
            phase = request.framing == .none ? .responding : .body(BodyDecoder(BodyFraming(request.framing)))
            if request.framing == .none && request.upgrade == nil { ex.requestHadNoBody() }
            ex.open(route, gateway: gateway, scheme: scheme, client: clientIP, loop: loop)
            return true
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
        if ex.request.expectsContinue, ex.response == nil, case .body = phase {
            write(ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n"), flush: true)
        }
        if case .body = phase { armBodyTimer() }
        resumeReading()
        process()
    }

    // MARK: timers

    private func armTimer(_ after: Duration, _ fire: @escaping (HTTPServerHandler) -> Void) {
        timer?.arm(after: after) { [weak self] in
            if let self { fire(self) }
        }
    }

    /// A client must keep a request body moving: `idle_timeout` without a byte is 408.
    private func armBodyTimer() {
        armTimer(settings.idleTimeout) { $0.bodyTimedOut() }
    }

    private func bodyTimedOut() {
        guard case .body = phase, let ex = exchange, !readPaused else { return }
        ex.abort()
        refuseMidBody(ex, status: 408, reason: "the request body stalled for \(settings.idleTimeout)")
    }

    private func headerTimedOut() {
        guard exchange == nil, case .head = phase else { return }
        if let inbound, inbound.readableBytes > 0 {
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

    // MARK: writing

    private func write(_ buffer: ByteBuffer, flush: Bool, then: ((Result<Void, Error>) -> Void)? = nil) {
        guard let context else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        if let then { promise.futureResult.assumeIsolated().whenComplete(then) }
        lastWrite = promise.futureResult
        if flush { context.writeAndFlush(wrapOutboundOut(buffer), promise: promise) } else { context.write(wrapOutboundOut(buffer), promise: promise) }
    }

    /// Closes once everything written so far has gone out.
    private func closeAfterWrites() {
        phase = .closing
        timer?.cancel()
        guard let context else { return }
        let channel = context.channel
        if let last = lastWrite {
            last.whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    private func closeNow() {
        phase = .closing
        timer?.cancel()
        context?.close(promise: nil)
    }

    // MARK: the response (called by the exchange, on this loop)

    func exchange(_ ex: HTTPExchange, receivedHeaders fields: [HeaderField], endStream: Bool) {
        guard ex === exchange, !ex.responseComplete else { return }
        if let head = ex.response {
            // Trailers after the body.
            if head.framing == .chunked {
                var b = ByteBuffer(string: "0\r\n")
                for f in HopByHop.forwardedTrailers(fields) { b.writeString("\(f.name): \(f.value)\r\n") }
                b.writeString("\r\n")
                write(b, flush: true)
                ex.trailersWritten = true
            }
            if endStream { responseDone(ex) }
            return
        }
        guard let statusText = fields[":status"], let status = Int(statusText) else {
            ex.abort()
            return exchangeFailed(ex, status: 502, reason: "the agent sent a response without a status")
        }
        if (100..<200).contains(status) { return }  // 100 was sent by the gateway itself
        if let reason = fields["fastgw-reason"] {
            // The agent could not reach the upstream: the gateway renders the error.
            return exchangeFailed(ex, status: status, reason: reason)
        }
        if let upgrade = ex.request.upgrade, status == 200, !endStream {
            return switchProtocols(ex, fields: fields, upgrade: upgrade)
        }
        let keepAlive = ex.request.keepAlive && !closeWhenIdle && !gateway.isDraining
        guard let head = PublicResponseHead.make(
            fields: fields, requestMethod: ex.request.method, clientVersion: ex.request.version, keepAlive: keepAlive)
        else {
            ex.abort()
            return exchangeFailed(ex, status: 502, reason: "the agent sent a malformed response head")
        }
        timer?.cancel()
        ex.response = head
        ex.status = status
        write(ByteBuffer(bytes: head.bytes), flush: endStream || head.framing == .none)
        if endStream || head.framing == .none { responseDone(ex) }
    }

    /// The upstream accepted the upgrade: 101 to the client, then raw bytes both ways.
    private func switchProtocols(_ ex: HTTPExchange, fields: [HeaderField], upgrade: String) {
        timer?.cancel()
        let head = PublicResponseHead.upgraded(fields: fields, protocol: upgrade)
        ex.response = head
        ex.status = 101
        write(ByteBuffer(bytes: head.bytes), flush: true)
        phase = .tunnel
        resumeReading()
        process()
    }

    func exchange(_ ex: HTTPExchange, receivedBody bytes: ByteBuffer) {
        let n = bytes.readableBytes
        guard ex === exchange, let head = ex.response, !ex.responseComplete, context != nil else {
            ex.consumed(n)
            return
        }
        ex.bytesOut += n
        let counters = ex.counters
        let done: (Result<Void, Error>) -> Void = { result in
            ex.consumed(n)
            if case .success = result { counters?.bytesOut.add(n) }
        }
        if head.framing == .chunked {
            var frame = ByteBuffer(string: String(n, radix: 16) + "\r\n")
            write(frame, flush: false)
            write(bytes, flush: false)
            frame = ByteBuffer(string: "\r\n")
            write(frame, flush: true, then: done)
        } else {
            write(bytes, flush: true, then: done)
        }
    }

    func exchangeResponseEnded(_ ex: HTTPExchange) {
        guard ex === exchange, !ex.responseComplete else { return }
        if ex.response == nil {
            return exchangeFailed(ex, status: 502, reason: "the agent ended the stream without a response")
        }
        responseDone(ex)
    }

    func exchange(_ ex: HTTPExchange, streamClosed code: UInt32) {
        guard ex === exchange, !ex.responseComplete else { return }
        if ex.response == nil {
            let reason = code == 0 ? "the agent closed the stream without a response" : "the agent reset the stream (HTTP/2 error \(code))"
            return exchangeFailed(ex, status: 502, reason: reason)
        }
        // Part of the response went out: the client must see it cut, not complete.
        finishLog(ex, outcome: "stream reset mid-response (HTTP/2 error \(code))")
        exchange = nil
        closeNow()
    }

    private func responseDone(_ ex: HTTPExchange) {
        guard let head = ex.response else { return }
        if head.framing == .chunked && !ex.trailersWritten {
            write(ByteBuffer(string: "0\r\n\r\n"), flush: true)
        }
        ex.responseComplete = true
        finishLog(ex, outcome: nil)
        exchange = nil
        let read = requestRead
        // Not all of the request went to the agent (a refused upgrade, a half-read body):
        // the stream is reset.
        if !read || !ex.requestEnded { ex.abort() }
        if nextRequestOrClose(keepAlive: head.keepAlive && read) {
            resumeReading()
            process()
        }
    }

    /// The request was read to its end, body included, so another may follow it.
    private var requestRead: Bool {
        if case .responding = phase { return true }
        return false
    }

    /// After an exchange: wait for the next request (quietly closed after `idle_timeout`), or
    /// close once everything written has gone out.
    private func nextRequestOrClose(keepAlive: Bool) -> Bool {
        if keepAlive && !closeWhenIdle && !gateway.isDraining {
            phase = .head
            armTimer(settings.idleTimeout) { $0.headerTimedOut() }
            return true
        }
        closeAfterWrites()
        return false
    }

    // MARK: errors

    /// An error for a request that never got a stream; the connection stays open when the
    /// request had no body to skip.
    private func answer(_ ex: HTTPExchange, status: Int, reason: String) -> Bool {
        endWithError(ex, status: status, reason: reason, canKeepAlive: ex.request.framing == .none)
    }

    /// The exchange failed before its response began: the gateway answers with an error.
    func exchangeFailed(_ ex: HTTPExchange, status: Int, reason: String) {
        guard ex === exchange, ex.response == nil else { return }
        exchange = nil
        if endWithError(ex, status: status, reason: reason, canKeepAlive: requestRead) {
            process()
        } else {
            ex.abort()
        }
    }

    /// Writes the gateway's error page as the exchange's response; true when the connection
    /// waits for another request.
    private func endWithError(_ ex: HTTPExchange, status: Int, reason: String, canKeepAlive: Bool) -> Bool {
        let keep = canKeepAlive && ex.request.keepAlive && !closeWhenIdle && !gateway.isDraining
        writeError(status: status, reason: reason, requestID: ex.requestID, keepAlive: keep)
        ex.status = status
        ex.responseComplete = true
        finishLog(ex, outcome: reason)
        return nextRequestOrClose(keepAlive: keep)
    }

    /// The body turned out bad or too large after the stream opened.
    private func refuseMidBody(_ ex: HTTPExchange, status: Int, reason: String) {
        if ex.response == nil {
            writeError(status: status, reason: reason, requestID: ex.requestID, keepAlive: false)
            ex.status = status
        }
        ex.responseComplete = true
        exchange = nil
        finishLog(ex, outcome: reason)
        closeAfterWrites()
    }

    /// A request refused before it was understood: answer and close.
    private func refuse(status: Int, reason: String, requestID: String = RequestID.make(), head: HTTPHead? = nil) {
        writeError(status: status, reason: reason, requestID: requestID, keepAlive: false)
        accounting.refused(status: status, reason: reason, requestID: requestID,
                           request: head.map { $0.startLine.prefix(2).joined(separator: " ") } ?? "-")
        closeAfterWrites()
    }

    private func writeError(status: Int, reason: String, requestID: String, keepAlive: Bool) {
        let page = HTTPErrorPage(status: status, reason: reason, requestID: requestID, keepAlive: keepAlive)
        write(ByteBuffer(bytes: page.bytes), flush: true)
    }

    // MARK: accounting

    private var accounting: HTTPAccounting {
        HTTPAccounting(gateway: gateway, listener: listener, client: clientAddress)
    }

    private func finishLog(_ ex: HTTPExchange, outcome: String?) {
        accounting.finished(ex, outcome: outcome)
    }
}

/// Sent down every public HTTP connection's pipeline when the gateway drains.
struct HTTPDrainNotice: Sendable {}
