import NIOCore
import NIOPosix
import Protocol

/// The socket half of a tunnel stream: a public client's connection on the gateway, an
/// upstream connection on the agent. Bytes read go to the stream; bytes from the stream are
/// written and only then consumed (their window granted back), so a slow reader stalls the
/// far sender instead of filling memory. Half-closes travel as END_STREAM, aborts as RST.
final class StreamSocketBridge: ChannelDuplexHandler, StreamEndpoint {
    typealias Link = TunnelStreamLink<StreamSocketBridge>
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Summary {
        var bytesFromSocket = 0
        var bytesToSocket = 0
        /// Why the connection was aborted, for the log; nil for a clean end.
        var abortReason: String?
        var aborted: Bool { abortReason != nil }
    }

    private var context: ChannelHandlerContext?
    private var link: LoopBoundRef<Link>?
    /// Socket reads that arrived before the stream existed (at most one read: reading pauses).
    private var early: [ByteBuffer] = []
    private var earlyEnd = false
    private var readPaused = false
    private var readPending = false
    private var outstandingWrites = 0
    private var tunnelEndedFlag = false
    private var outputClosed = false
    private var inputEnded = false
    private var streamOver = false
    private(set) var summary = Summary()
    /// Service counters, bumped as bytes move (reads as they arrive, writes once written).
    var meter: ByteMeter?
    /// `[[policy]] bandwidth` (gateway): bytes read from the client, and bytes for it, pass
    /// these first. Nil for everything else, which pays one nil check a read and a write.
    private var upload: BandwidthPacer?
    private var download: BandwidthPacer?
    /// The socket is closed (channelInactive ran).
    private var finished = false
    /// Called once when the socket is closed, on the socket's loop — at once if it is set
    /// after the socket already closed.
    var onClose: ((Summary) -> Void)? {
        didSet {
            if finished, let f = onClose {
                onClose = nil
                f(summary)
            }
        }
    }

    init(link: LoopBoundRef<Link>?) {
        self.link = link
        self.readPaused = link == nil
    }

    func attach(_ link: LoopBoundRef<Link>) {
        self.link = link
        // Held bytes go to the stream even after the socket closed cleanly.
        upload?.sink = { bytes in link.run { $0.fromSocket(bytes) } }
        if finished {
            // The client left while the stream was being opened: abort it on the far side.
            link.run { $0.socketFailed() }
            return
        }
        early.forEach(toTunnel)
        early = []
        if earlyEnd { endTunnelInput() }
        resumeReading()
    }

    /// Paces this socket's traffic with `caps` (before `attach`, on the socket's loop).
    func pace(_ caps: BandwidthCaps, loop: EventLoop) {
        let up = caps.pacer(.upload, on: loop)
        up.onRelease = { [weak self] in self?.readIfWanted() }
        upload = up
        let down = caps.pacer(.download, on: loop)
        down.sink = { [weak self] bytes in self?.write(bytes) }
        download = down
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// An upstream connection that was dialled: the channel that won (a host name's dial tries
    /// each address with this handler, so the last one added need not be it), and its close
    /// future as the sign of its end — a channel closed from inside its own connect
    /// callbacks (a stream reset while the upstream was being dialled) fires no inactive.
    func adopt(_ channel: Channel) {
        if let winner = try? channel.pipeline.syncOperations.context(handler: self) { context = winner }
        channel.closeFuture.assumeIsolated().whenComplete { _ in self.socketClosed() }
    }

    /// The stream could not be opened: drop the socket (`reset`: with RST, SO_LINGER 0, so
    /// the client cannot take it for a clean EOF).
    func abort(reset: Bool = false) {
        markAborted("tunnel stream could not be opened")
        streamOver = true
        if reset { _ = (context?.channel as? SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0)) }
        context?.close(promise: nil)
    }

    /// The stream was opened but not answered in time: drop the socket and reset the stream.
    func abandon(_ reason: String) {
        markAborted(reason)
        context?.close(promise: nil)
    }

    private func markAborted(_ reason: String) {
        if summary.abortReason == nil { summary.abortReason = reason }
    }

    // MARK: socket → tunnel

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        summary.bytesFromSocket += bytes.readableBytes
        meter?.fromSocket(bytes.readableBytes)
        if link != nil { toTunnel(bytes) } else { early.append(bytes) }
    }

    private func toTunnel(_ bytes: ByteBuffer) {
        if let upload { upload.send(bytes) } else { link?.run { $0.fromSocket(bytes) } }
    }

    /// The client's half-close, after the bytes it sent before.
    private func endTunnelInput() {
        let end: () -> Void = { [link] in link?.run { $0.socketEnded() } }
        if let upload { upload.after(end) } else { end() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputEnded = true
            if link != nil { endTunnelInput() } else { earlyEnd = true }
            if tunnelEndedFlag && outstandingWrites == 0 { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if readPaused || upload?.isHolding == true { readPending = true } else { context.read() }
    }

    func pauseReading() {
        readPaused = true
    }

    func resumeReading() {
        guard readPaused, link != nil else { return }
        readPaused = false
        readIfWanted()
    }

    /// A read asked for while paused (by the tunnel or the bandwidth cap), once neither holds it.
    private func readIfWanted() {
        if readPending, !readPaused, upload?.isHolding != true, let context {
            readPending = false
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        markAborted("socket error: \(error)")
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A host name's dial may have given this handler to other channels too (the attempts
        // that lost): only the adopted one is this socket.
        if context.channel === self.context?.channel { socketClosed() }
        context.fireChannelInactive()
    }

    /// Once, when the socket closed: the far side learns how, and `onClose` reports.
    private func socketClosed() {
        guard !finished else { return }
        // After our half-close NIO turns the peer's EOF into a full close without an
        // `inputClosed` event: with no error seen, that is the clean end of the input.
        if outputClosed && !inputEnded && !summary.aborted {
            inputEnded = true
            endTunnelInput()
        }
        // Closed before both directions ended cleanly: the far side must see an abort.
        if !streamOver && !(inputEnded && tunnelEndedFlag) {
            markAborted("socket closed before the stream ended")
            upload?.stop()
            link?.run { $0.socketFailed() }
        }
        streamOver = true
        finished = true
        // Nothing more can be written; what the client sent and is still held goes on.
        download?.stop()
        let report = onClose
        onClose = nil
        report?(summary)
        context = nil
    }

    // MARK: tunnel → socket (called on this socket's loop)

    /// A TCP stream's HEADERS are read on the tunnel loop (`TunnelStreamLink.onHeaders`).
    func tunnelHeaders(_ fields: [HeaderField], endStream: Bool) {}

    func writeToSocket(_ bytes: ByteBuffer) {
        if let download { download.send(bytes) } else { write(bytes) }
    }

    private func write(_ bytes: ByteBuffer) {
        guard let context, !outputClosed else {
            // The socket is gone; give the window back so the tunnel does not stall.
            let n = bytes.readableBytes
            link?.run { $0.consumed(n) }
            return
        }
        let n = bytes.readableBytes
        summary.bytesToSocket += n
        outstandingWrites += 1
        let link = self.link
        let meter = self.meter
        context.writeAndFlush(wrapOutboundOut(bytes)).assumeIsolated().whenComplete { result in
            link?.run { $0.consumed(n) }
            let success = (try? result.get()) != nil
            if success { meter?.toSocket(n) }
            self.writeCompleted(success: success)
        }
    }

    private func writeCompleted(success: Bool) {
        outstandingWrites -= 1
        if !success {
            context?.close(promise: nil)
            return
        }
        finishOutputIfDone()
    }

    func tunnelEnded() {
        guard let download else { return endOutput() }
        download.after { [weak self] in self?.endOutput() }
    }

    private func endOutput() {
        tunnelEndedFlag = true
        finishOutputIfDone()
    }

    /// Half-close towards the socket once everything from the tunnel has been written.
    private func finishOutputIfDone() {
        guard tunnelEndedFlag, outstandingWrites == 0, !outputClosed, let context else { return }
        outputClosed = true
        if inputEnded || streamOver {
            context.close(promise: nil)
        } else {
            context.close(mode: .output, promise: nil)
        }
    }

    func tunnelClosed(errorCode: UInt32) {
        // A clean end comes after the bytes still held for the socket; an abort at once.
        if let download {
            if errorCode != 0 { download.stop() }
            return download.after { [weak self] in self?.streamClosed(errorCode: errorCode) }
        }
        streamClosed(errorCode: errorCode)
    }

    private func streamClosed(errorCode: UInt32) {
        streamOver = true
        if errorCode != 0 { upload?.stop() }
        guard let context else { return }
        if errorCode != 0 {
            markAborted("tunnel stream reset (HTTP/2 error \(errorCode))")
            // RST to the socket's peer: an abort stays an abort across the tunnel.
            _ = (context.channel as? SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
            context.close(promise: nil)
        } else if outstandingWrites == 0 {
            context.close(promise: nil)
        } else {
            tunnelEndedFlag = true
        }
    }
}
