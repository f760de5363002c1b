import Logging
import NIOCore
import Protocol

/// One client of a control socket: splits its bytes into request lines, answers them one
/// at a time and in order, and protects the daemon from clients that misbehave — an
/// over-long line gets `ERR 400` and the connection is closed, a binary or malformed line
/// gets `ERR 400`, an idle client is dropped after `idleTimeout`.
final class ControlConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Requests a client may send ahead of their answers before it is cut off.
    static let maxQueuedRequests = 64

    private let responder: ControlResponder
    private let logger: Logger
    private let idleTimeout: TimeAmount
    private var partial: [UInt8] = []
    private var queue: [[UInt8]] = []
    private var busy = false
    private var inputEnded = false
    private var closing = false
    private var idleTimer: Scheduled<Void>?

    init(responder: ControlResponder, logger: Logger, idleTimeout: TimeAmount) {
        self.responder = responder
        self.logger = logger
        self.idleTimeout = idleTimeout
    }

    func channelActive(context: ChannelHandlerContext) {
        PeerCredentials.read(from: context.channel).assumeIsolated().whenComplete { [logger] result in
            switch result {
            case .success(let c):
                logger.info("control connection", metadata: ["uid": "\(c.uid)", "pid": "\(c.pid)", "gid": "\(c.gid)"])
            case .failure(let error):
                logger.info("control connection", metadata: ["peer": "unknown (\(error))"])
            }
        }
        armIdleTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let bytes = unwrapInboundIn(data)
        armIdleTimer(context: context)
        for byte in bytes.readableBytesView {
            if byte == 10 {
                queue.append(partial)
                partial.removeAll(keepingCapacity: true)
            } else {
                partial.append(byte)
                // +1: a CR before the LF does not count against the limit.
                if partial.count > ControlRequest.maxLineBytes + 1 {
                    fail(context: context, "request line longer than \(ControlRequest.maxLineBytes) bytes")
                    return
                }
            }
        }
        if queue.count > Self.maxQueuedRequests {
            fail(context: context, "more than \(Self.maxQueuedRequests) requests sent ahead of their answers")
            return
        }
        processQueue(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputEnded = true
            if !partial.isEmpty {
                queue.append(partial)
                partial = []
            }
            processQueue(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func processQueue(context: ChannelHandlerContext) {
        while !busy && !closing && !queue.isEmpty {
            let line = queue.removeFirst()
            switch ControlRequest.parse(line, role: responder.role) {
            case .success(nil):
                continue
            case .failure(let error):
                write(context: context, ControlOutcome.error(error))
            case .success(.some(let request)):
                if request.command == .quit {
                    closing = true
                    let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
                    context.writeAndFlush(wrapOutboundOut(buffer(context, .ok("bye\n")))).whenComplete { _ in
                        ctx.value.close(promise: nil)
                    }
                    return
                }
                busy = true
                idleTimer?.cancel()
                let me = NIOLoopBound(self, eventLoop: context.eventLoop)
                let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
                responder.respond(to: request, on: context.eventLoop)
                    .flatMapErrorThrowing { error in
                        .error(error as? ControlError ?? .internal("\(error)"))
                    }
                    .hop(to: context.eventLoop)
                    .assumeIsolated()
                    .whenSuccess { outcome in
                        me.value.finished(context: ctx.value, outcome)
                    }
            }
        }
        if !busy && queue.isEmpty && inputEnded && !closing {
            closing = true
            context.close(promise: nil)
        }
    }

    private func finished(context: ChannelHandlerContext, _ outcome: ControlOutcome) {
        busy = false
        guard context.channel.isActive else {
            outcome.afterWrite?()
            return
        }
        write(context: context, outcome)
        armIdleTimer(context: context)
        processQueue(context: context)
    }

    private func write(context: ChannelHandlerContext, _ outcome: ControlOutcome) {
        let future = context.writeAndFlush(wrapOutboundOut(buffer(context, outcome.reply)))
        if let after = outcome.afterWrite {
            future.whenComplete { _ in after() }
        }
    }

    private func buffer(_ context: ChannelHandlerContext, _ reply: ControlReply) -> ByteBuffer {
        context.channel.allocator.buffer(bytes: reply.encoded())
    }

    private func fail(context: ChannelHandlerContext, _ message: String) {
        closing = true
        logger.notice("control client misbehaved; connection closed", metadata: ["reason": "\(message)"])
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(buffer(context, .error(.badRequest(message))))).whenComplete { _ in
            ctx.value.close(promise: nil)
        }
    }

    private func armIdleTimer(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        guard !busy else { return }
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        let logger = self.logger
        let seconds = idleTimeout.nanoseconds / 1_000_000_000
        idleTimer = context.eventLoop.scheduleTask(in: idleTimeout) {
            logger.debug("control connection idle; closed", metadata: ["idle_seconds": "\(seconds)"])
            ctx.value.close(promise: nil)
        }
    }
}
