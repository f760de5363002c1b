import NIOCore
import NIOPosix
import Protocol

/// Keep-alive HTTP/1.1 connections to the upstreams of http services, for the streams of
/// one tunnel connection (so it lives on that connection's loop and needs no lock). Idle
/// connections are bounded per upstream and closed after the service's idle timeout, by one
/// sweep task for the whole pool (a connection goes in and out of the pool once per request;
/// a timer each time would cost more than the request's own work).
///
/// A connection that began with a PROXY protocol header speaks for one public connection
/// only (proxy-protocol.txt forbids sharing it between clients), so idle connections are
/// keyed by upstream and the header bytes they were opened with: a request reuses only a
/// connection opened for the same client address and port and the same listener address,
/// i.e. for an earlier request of the same public connection. The bound stays the same,
/// `max_idle_connections` per upstream across all keys; when it is reached the connection
/// nearest its idle timeout is closed to make room, so connections of clients that left cannot keep
/// those of active ones out.
final class UpstreamPool {
    private struct Idle {
        let channel: Channel
        let handler: UpstreamConnectionHandler
        let expiry: NIODeadline
    }

    private struct Key: Hashable {
        let upstream: UpstreamAddress
        /// The PROXY header the connection started with; empty for none.
        let preamble: [UInt8]
    }

    let loop: EventLoop
    private var idle: [Key: [Idle]] = [:]
    /// Idle connections per upstream, over all its keys.
    private var counts: [UpstreamAddress: Int] = [:]
    private var sweep: Scheduled<Void>?
    private var sweepAt: NIODeadline?

    init(loop: EventLoop) {
        self.loop = loop
    }

    /// An idle connection when one is left open, else a new one. `reused` tells a request
    /// that it may meet a connection the upstream has just closed. `preamble`: the PROXY
    /// header the connection must have started with (a new one is sent it first).
    /// Calls back on the pool's loop.
    func acquire(
        _ service: AgentConfig.Service, preamble: [UInt8]? = nil,
        _ done: @escaping (Result<(UpstreamConnectionHandler, reused: Bool), Error>) -> Void
    ) {
        let key = Key(upstream: service.upstream, preamble: preamble ?? [])
        while let candidate = idle[key]?.popLast() {
            // Per-client keys go when empty (their number must not grow); the one key of a
            // service without PROXY headers keeps its list, which every request refills.
            if !key.preamble.isEmpty, idle[key]?.isEmpty == true { idle[key] = nil }
            counts[key.upstream, default: 1] -= 1
            if candidate.channel.isActive { return done(.success((candidate.handler, true))) }
        }
        let handler = UpstreamConnectionHandler()
        handler.preamble = key.preamble
        let bound = NIOLoopBound(handler, eventLoop: loop)
        let connecting = UpstreamConnector.connect(service, on: loop, handler: bound, allowHalfClosure: false, preamble: preamble)
        connecting.assumeIsolated().whenComplete { result in
            done(result.map { channel in
                handler.adopt(channel)
                return (handler, false)
            })
        }
    }

    /// Takes back a connection whose exchange ended cleanly.
    func release(_ handler: UpstreamConnectionHandler, service: AgentConfig.Service) {
        guard let channel = handler.channel, channel.isActive else { return }
        let upstream = service.upstream
        guard service.maxIdleConnections > 0 else {
            channel.close(promise: nil)
            return
        }
        if counts[upstream, default: 0] >= service.maxIdleConnections { evictOldest(of: upstream) }
        let key = Key(upstream: upstream, preamble: handler.preamble)
        let expiry = NIODeadline.now() + TimeAmount(service.idleTimeout)
        idle[key, default: []].append(Idle(channel: channel, handler: handler, expiry: expiry))
        counts[upstream, default: 0] += 1
        // An idle connection the upstream closes leaves the pool at once. An exchange can end
        // with reading paused (its last bytes came in while the tunnel was full): a read NIO
        // asked for meanwhile is only pending, and must be issued now, or neither the close
        // nor the next exchange's response would ever be read.
        handler.onIdleClose = { [weak self] in self?.drop(channel, key: key) }
        handler.resumeReading()
        scheduleSweep(at: expiry)
    }

    /// Closes the connection of `upstream` nearest its idle timeout (each key's list is in
    /// release order, so only first entries are compared). Runs only when the pool is full.
    private func evictOldest(of upstream: UpstreamAddress) {
        var oldest: (key: Key, expiry: NIODeadline)?
        for (key, list) in idle where key.upstream == upstream {
            if let first = list.first, first.expiry < oldest?.expiry ?? .distantFuture { oldest = (key, first.expiry) }
        }
        guard let key = oldest?.key, let entry = idle[key]?.removeFirst() else { return }
        if idle[key]?.isEmpty == true { idle[key] = nil }
        counts[upstream, default: 1] -= 1
        entry.handler.onIdleClose = nil
        entry.channel.close(promise: nil)
    }

    private func scheduleSweep(at when: NIODeadline) {
        if let sweepAt, sweepAt <= when { return }
        sweep?.cancel()
        sweepAt = when
        sweep = loop.assumeIsolated().scheduleTask(deadline: when) { [weak self] in self?.closeExpired() }
    }

    /// Closes the connections idle for longer than their service allows.
    private func closeExpired() {
        sweep = nil
        sweepAt = nil
        let now = NIODeadline.now()
        var next: NIODeadline?
        for (key, list) in idle {
            var kept: [Idle] = []
            for entry in list {
                if entry.expiry <= now {
                    entry.handler.onIdleClose = nil
                    entry.channel.close(promise: nil)
                    counts[key.upstream, default: 1] -= 1
                } else {
                    kept.append(entry)
                    next = min(next ?? entry.expiry, entry.expiry)
                }
            }
            idle[key] = kept.isEmpty ? nil : kept
        }
        if let next { scheduleSweep(at: next) }
    }

    private func drop(_ channel: Channel, key: Key) {
        guard let index = idle[key]?.firstIndex(where: { $0.channel === channel }) else { return }
        idle[key]?.remove(at: index)
        if idle[key]?.isEmpty == true { idle[key] = nil }
        counts[key.upstream, default: 1] -= 1
    }

    func closeAll() {
        sweep?.cancel()
        sweep = nil
        sweepAt = nil
        for list in idle.values {
            for entry in list { entry.channel.close(promise: nil) }
        }
        idle = [:]
        counts = [:]
    }
}

/// The pipeline end of one upstream HTTP/1.1 connection: hands reads to the exchange that
/// holds the connection, and lets it pause reading.
final class UpstreamConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private(set) var context: ChannelHandlerContext?
    weak var exchange: UpstreamExchange?
    /// Set while the connection sits in the pool.
    var onIdleClose: (() -> Void)?
    /// The PROXY header this connection began with (empty for none): its key in the pool.
    var preamble: [UInt8] = []
    private var readPaused = false
    private var readPending = false

    var channel: Channel? { context?.channel }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// The channel that won the dial (a host name's dial tries each address with this handler).
    func adopt(_ channel: Channel) {
        if let winner = try? channel.pipeline.syncOperations.context(handler: self) { context = winner }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let exchange {
            exchange.upstreamRead(unwrapInboundIn(data))
        } else {
            // Bytes nobody asked for: the connection cannot be trusted any more.
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // An attempt that lost the dial is not this connection.
        guard context.channel === self.context?.channel else { return context.fireChannelInactive() }
        self.context = nil
        onIdleClose?()
        onIdleClose = nil
        exchange?.upstreamClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if readPaused { readPending = true } else { context.read() }
    }

    func take(for exchange: UpstreamExchange) {
        self.exchange = exchange
        onIdleClose = nil
        resumeReading()
    }

    func pauseReading() {
        readPaused = true
    }

    func resumeReading() {
        guard readPaused else { return }
        readPaused = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    func write(_ buffer: ByteBuffer, then: ((Result<Void, Error>) -> Void)? = nil) {
        guard let context else {
            then?(.failure(ChannelError.ioOnClosedChannel))
            return
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        if let then { promise.futureResult.assumeIsolated().whenComplete(then) }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: promise)
    }

    func close() {
        context?.close(promise: nil)
    }

    /// Half-close: the upstream reads end of stream, and may still answer.
    func closeOutput() {
        context?.close(mode: .output, promise: nil)
    }
}
