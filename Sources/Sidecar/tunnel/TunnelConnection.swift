import CNghttp2
import Logging
import NIOCore
import Protocol

/// The HTTP/2 layer of one tunnel connection, after the upgrade handshake: feeds the socket's
/// bytes to the `H2Session`, writes its output in one batch per loop tick, routes stream
/// events to their handlers, and runs the PING keepalive. Confined to its channel's loop.
final class TunnelConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let session: H2Session
    let keepalive: (interval: TimeAmount, timeout: TimeAmount)
    /// Strong, released when the connection closes (the delegate holds the connection weakly).
    var delegate: TunnelConnectionDelegate?
    private(set) var context: ChannelHandlerContext?
    private var handlers: [Int32: TunnelStreamHandler] = [:]
    private var flushScheduled = false
    /// Output handed to the pipeline and not flushed yet.
    private var unflushed = false
    private var keepaliveTask: RepeatedTask?
    private var pingSentAt: NIODeadline?
    private var closed = false
    private var closeReason = "connection closed"

    private(set) var rtt: TimeAmount?
    private(set) var receivedGoaway = false
    /// Streams that do not keep a shutting-down connection open (the control stream).
    var idleExempt: Set<Int32> = []
    private var shutdownPing: UInt64?
    private var shutdownStartedAt: NIODeadline?
    /// Our GOAWAY notice was answered by the peer's PING ACK: no new stream can still arrive.
    private(set) var shutdownConfirmed = false
    /// No new streams will be opened either way: close once the last one ends.
    private var closeWhenIdle = false
    /// GOAWAY frames this side asked nghttp2 to send; any other that leaves is nghttp2's own.
    private var goawaysRequested = 0
    /// Public sessions: how long queued DATA may wait for a peer that stopped granting window.
    var stallTimeout: TimeAmount?
    private var lastProgressAt = NIODeadline.now()
    private var dataFramesSeen = 0

    init(session: H2Session, keepaliveInterval: TimeAmount, keepaliveTimeout: TimeAmount) {
        self.session = session
        self.keepalive = (keepaliveInterval, keepaliveTimeout)
    }

    var eventLoop: EventLoop? { context?.eventLoop }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        delegate?.tunnelEstablished(self)
        flushNow()
        let loop = context.eventLoop
        let me = NIOLoopBound(self, eventLoop: loop)
        // The first PING goes out at once so the RTT is known from the start.
        keepaliveTask = loop.scheduleRepeatedTask(initialDelay: .milliseconds(10), delay: keepalive.interval) { _ in
            me.value.keepaliveTick()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        keepaliveTask?.cancel()
        self.context = nil
    }

    // MARK: streams (API for role logic and stream links)

    func register(stream id: Int32, handler: TunnelStreamHandler) {
        handlers[id] = handler
    }

    func openStream(headers: [HeaderField], endStream: Bool = false, handler: TunnelStreamHandler) throws(H2Error) -> Int32 {
        guard !closed else { throw H2Error(description: "tunnel connection is closed") }
        let id = try session.openStream(headers: headers, endStream: endStream)
        handlers[id] = handler
        scheduleFlush()
        return id
    }

    func respond(stream: Int32, headers: [HeaderField], endStream: Bool) {
        session.respond(stream: stream, headers: headers, endStream: endStream)
        scheduleFlush()
    }

    /// Returns false when the stream's queue is above its watermark: pause the source.
    func write(stream: Int32, _ bytes: ByteBuffer) -> Bool {
        let below = session.write(stream: stream, bytes)
        scheduleFlush()
        return below
    }

    func finish(stream: Int32, trailers: [HeaderField] = []) {
        session.finish(stream: stream, trailers: trailers)
        scheduleFlush()
    }

    func reset(stream: Int32, code: UInt32 = NGHTTP2_CANCEL.rawValue) {
        session.reset(stream: stream, code: code)
        scheduleFlush()
    }

    func consume(stream: Int32, bytes: Int) {
        session.consume(stream: stream, bytes: bytes)
        scheduleFlush()
    }

    /// Graceful: GOAWAY, let streams in flight finish.
    func goaway() {
        sendGoaway()
        scheduleFlush()
    }

    private func sendGoaway() {
        goawaysRequested += 1
        session.goaway()
    }

    /// No new stream will be taken here any more (GOAWAY either way).
    var isDraining: Bool { receivedGoaway || closeWhenIdle }

    /// Whether a stream opened now would be sent: not draining, and below the peer's limit.
    var takesNewStreams: Bool { !closed && !isDraining && !session.atPeerStreamLimit }

    /// Streams in flight, not counting idle-exempt ones (counted without building a list:
    /// a draining connection asks after every stream that ends).
    var activeStreams: Int {
        handlers.count - idleExempt.reduce(0) { $0 + (handlers[$1] != nil ? 1 : 0) }
    }

    /// Agent drain (DESIGN §2.3): GOAWAY notice and a PING; once the PING comes back the real
    /// GOAWAY follows, and the connection closes as soon as no stream is left.
    func shutdownGracefully() {
        guard !closed, shutdownPing == nil else { return }
        goawaysRequested += 1
        session.shutdownNotice()
        // Keepalive PINGs carry their send time; this value can never be one.
        shutdownPing = UInt64.max
        shutdownStartedAt = .now()
        session.ping(opaque: UInt64.max)
        closeWhenIdle = true
        scheduleFlush()
    }

    /// Closes a connection that will carry no new stream once its last one ended. Our own
    /// drain waits for the peer to confirm our GOAWAY notice first.
    private func closeIfIdle() {
        guard closeWhenIdle, shutdownPing == nil || shutdownConfirmed, activeStreams == 0, !closed else { return }
        if shutdownPing != nil {
            closeReason = "drained"
            sendGoaway()
        } else if receivedGoaway {
            closeReason = "peer sent GOAWAY and all streams finished"
        }
        flushNow()
        context?.close(promise: nil)
    }

    func close(reason: String) {
        closeReason = reason
        context?.close(promise: nil)
    }

    // MARK: I/O

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(unwrapInboundIn(data))
    }

    private func receive(_ bytes: ByteBuffer) {
        // What was queued earlier in this tick goes to the pipeline (unflushed: it still
        // leaves in the tick's one write) before the input is read: nghttp2 sends no new
        // stream's HEADERS once a GOAWAY has come in, so streams opened before the GOAWAY
        // arrived must be out of nghttp2 before it is processed. (Openers check
        // `receivedGoaway` and pick another connection after it.)
        if flushScheduled { writeOutput() }
        do {
            try session.receive(bytes)
        } catch {
            closeReason = error.description
            deliverEvents()
            flushNow()
            context?.close(promise: nil)
            return
        }
        deliverEvents()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            // HTTP/2 has no half-closed connection (public listeners allow half-closes for
            // HTTP/1.1): a peer that stopped sending is gone, and its streams with it.
            closeReason = "peer closed the connection"
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushNow()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flushNow() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        closeReason = "\(error)"
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        keepaliveTask?.cancel()
        let all = handlers
        handlers = [:]
        for (_, handler) in all { handler.closed(errorCode: NGHTTP2_CANCEL.rawValue) }
        delegate?.tunnelClosed(self, reason: closeReason)
        delegate = nil
        context.fireChannelInactive()
    }

    private func scheduleFlush() {
        guard !flushScheduled, let loop = context?.eventLoop else { return }
        flushScheduled = true
        loop.assumeIsolated().execute { self.flushNow() }
    }

    /// One gathering write and one flush for everything nghttp2 has ready. While the socket
    /// is not writable nothing is drained, so streams back up and their sources pause.
    private func flushNow() {
        flushScheduled = false
        guard let context, context.channel.isActive else { return }
        writeOutput()
        // Flushed even when the socket is not writable: unflushed output counts against
        // the watermark too, and only a flush drains it.
        if unflushed {
            unflushed = false
            context.flush()
        }
        deliverEvents()
        if session.isFinished {
            closeReason = receivedGoaway ? "peer sent GOAWAY and all streams finished" : "HTTP/2 session finished"
            context.close(promise: nil)
        }
    }

    /// Hands what nghttp2 has ready to the pipeline without flushing it, while the socket
    /// can take more.
    private func writeOutput() {
        guard let context, context.channel.isActive, context.channel.isWritable else { return }
        let output: [ByteBuffer]
        do {
            output = try session.drainOutput()
        } catch {
            closeReason = error.description
            context.close(promise: nil)
            return
        }
        for buffer in output { context.write(wrapOutboundOut(buffer), promise: nil) }
        if !output.isEmpty { unflushed = true }
    }

    private func deliverEvents() {
        while !session.events.isEmpty {
            let events = session.events
            session.events.removeAll(keepingCapacity: true)
            for event in events { dispatch(event) }
        }
    }

    private func dispatch(_ event: H2Event) {
        switch event {
        case .headers(let id, let fields, let endStream):
            if let handler = handlers[id] {
                handler.received(headers: fields, endStream: endStream)
                // END_STREAM on HEADERS (a bodiless response, trailers) ends the stream as on DATA.
                if endStream { handlers[id]?.remoteEnded() }
            } else if session.role == .server {
                // A delegate that returns nil has already answered (or reset) the stream.
                if let handler = delegate?.tunnel(self, incomingStream: id, headers: fields, endStream: endStream) {
                    handlers[id] = handler
                }
            }
        case .data(let id, let bytes):
            if let handler = handlers[id] {
                handler.received(data: bytes)
            } else {
                // Nobody will write these out; give the window back now.
                consume(stream: id, bytes: bytes.readableBytes)
            }
        case .remoteEnded(let id):
            handlers[id]?.remoteEnded()
        case .closed(let id, let code):
            handlers.removeValue(forKey: id)?.closed(errorCode: code)
            closeIfIdle()
        case .writable(let id):
            handlers[id]?.writable()
        case .headersTooLarge(let id):
            refuseOversizedHeaders(id)
        case .goaway:
            receivedGoaway = true
            closeWhenIdle = true
            delegate?.tunnelReceivedGoaway(self)
            closeIfIdle()
        case .goawaySent(let code):
            if goawaysRequested > 0 {
                goawaysRequested -= 1
                return
            }
            // nghttp2 refused the peer (a limit, a protocol error): no stream will be accepted
            // here any more, so the connection is as good as draining.
            closeWhenIdle = true
            closeReason = "HTTP/2 session sent GOAWAY (error \(code))"
            delegate?.tunnelStoppedAccepting(self, errorCode: code)
            closeIfIdle()
        case .pingAcknowledged(let opaque):
            if opaque == shutdownPing {
                shutdownConfirmed = true
                sendGoaway()
                scheduleFlush()
                closeIfIdle()
                return
            }
            let now = NIODeadline.now().uptimeNanoseconds
            if opaque <= now {
                let measured = TimeAmount.nanoseconds(Int64(now - opaque))
                rtt = measured
                delegate?.tunnelMeasured(self, rtt: measured)
            }
            pingSentAt = nil
        }
    }

    /// A header block over the limits was dropped while decoding: a request is answered 431,
    /// anything else (a response, trailers) ends its stream.
    private func refuseOversizedHeaders(_ id: Int32) {
        if session.role == .server && handlers[id] == nil {
            session.respond(stream: id, headers: [HeaderField(":status", "431")], endStream: true)
        } else {
            session.reset(stream: id, code: NGHTTP2_PROTOCOL_ERROR.rawValue)
        }
        delegate?.tunnelRefusedHeaders(self)
        scheduleFlush()
    }

    private func keepaliveTick() {
        let now = NIODeadline.now()
        if let started = shutdownStartedAt, !shutdownConfirmed, now - started > keepalive.timeout {
            closeReason = "peer did not confirm the GOAWAY notice within \(keepalive.timeout.nanoseconds / 1_000_000) ms"
            context?.close(promise: nil)
            return
        }
        if let stall = stallTimeout {
            // Progress is DATA leaving, not any frame: our own PINGs and their ACKs flow
            // however stalled the streams are.
            if session.dataFramesSent != dataFramesSeen || !session.hasQueuedOutput {
                dataFramesSeen = session.dataFramesSent
                lastProgressAt = now
            } else if now - lastProgressAt > stall {
                closeReason = "peer read nothing for \(stall.nanoseconds / 1_000_000_000) s"
                context?.close(promise: nil)
                return
            }
        }
        if let sent = pingSentAt, now - sent > keepalive.timeout {
            closeReason = "keepalive timeout: no PING ACK within \(keepalive.timeout.nanoseconds / 1_000_000) ms"
            context?.close(promise: nil)
            return
        }
        if pingSentAt == nil {
            pingSentAt = now
            session.ping(opaque: now.uptimeNanoseconds)
            scheduleFlush()
        }
    }
}
