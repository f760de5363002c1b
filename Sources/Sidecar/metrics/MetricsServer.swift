import Logging
import NIOCore
import NIOPosix
import Protocol
import NIOConcurrencyHelpers

/// What the `[metrics]` listener reports about its daemon.
protocol MetricsSource: Sendable {
    /// The Prometheus text exposition of the daemon's counters, gauges and histograms.
    func prometheus() -> String
    /// Why the daemon is not ready to serve (`/readyz` answers 503 with it), or nil.
    func notReady() -> String?
}

/// The `[metrics]` HTTP listener (either role): `/metrics`, `/healthz`, `/readyz` for
/// Prometheus and balancers. Small on purpose: one request per connection, a head of at most
/// 8 KiB within 2 s, at most 32 connections at once and 4 from one address (so one client
/// cannot hold the slots a scraper or a balancer's probe needs), clients outside `allow`
/// closed at accept. Bound at start (or adopted from socket activation, name `metrics`); a reload
/// does not move it.
enum MetricsServer {
    static let maxConnections = 32
    static let maxConnectionsPerClient = 4
    static let headTimeout = TimeAmount.seconds(2)
    static let maxHeadBytes = 8192

    static func bind(
        _ config: MetricsConfig, inherited: InheritedListener?, group: MultiThreadedEventLoopGroup, source: MetricsSource,
        logger: Logger
    ) throws -> Channel {
        let open = Connections()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let peer = channel.remoteAddress?.ipEndpoint?.address
                    if !config.allow.isEmpty, peer.map({ !config.allow.contains($0) }) ?? true {
                        throw MetricsRefused()
                    }
                    let key = peer.map(ClientKey.init)
                    guard open.take(key) else { throw MetricsRefused() }
                    channel.closeFuture.whenComplete { _ in open.release(key) }
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(source: source, group: group))
                }
            }
        if let inherited {
            let channel = try SocketActivation.adopt(inherited, with: bootstrap)
            logger.info("listening", metadata: [
                "listener": "metrics", "address": "\(inherited.address)", "activation": "fd \(inherited.fd) \(inherited.name)",
            ])
            return channel
        }
        do {
            let channel = try bootstrap.bind(host: config.listen.host, port: config.listen.port).wait()
            logger.info("listening", metadata: ["listener": "metrics", "address": "\(config.listen)"])
            return channel
        } catch {
            throw StartupError("[metrics] cannot listen on \(config.listen): \(error)")
        }
    }

    private struct MetricsRefused: Error {}

    private final class Connections: Sendable {
        private let open = NIOLockedValueBox(InFlightLimit<ClientKey>(
            total: MetricsServer.maxConnections, perKey: MetricsServer.maxConnectionsPerClient))

        func take(_ key: ClientKey?) -> Bool {
            open.withLockedValue { $0.take(key) == nil }
        }

        func release(_ key: ClientKey?) {
            open.withLockedValue { $0.release(key) }
        }
    }
}

/// One request on the metrics listener: read the head, answer, close.
private final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let source: MetricsSource
    private let group: MultiThreadedEventLoopGroup
    private var parser = HTTPHeadParser(limit: MetricsServer.maxHeadBytes)
    private var timer: Scheduled<Void>?
    private var answered = false

    init(source: MetricsSource, group: MultiThreadedEventLoopGroup) {
        self.source = source
        self.group = group
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: MetricsServer.headTimeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        let bytes = unwrapInboundIn(data)
        switch parser.feed(bytes.readableBytesView) {
        case .needMore:
            return
        case .invalid(let reason):
            send(MetricsEndpoint.Answer(status: 400, body: reason + "\n"), context)
        case .complete(let head, _):
            switch MetricsEndpoint.route(head) {
            case .failure(let answer):
                send(answer, context)
            case .success((.metrics, let headOnly)):
                send(MetricsEndpoint.Answer(
                    status: 200, contentType: MetricsEndpoint.prometheusType, body: source.prometheus(), headOnly: headOnly), context)
            case .success((.ready, let headOnly)):
                send(MetricsEndpoint.probe(source.notReady(), headOnly: headOnly), context)
            case .success((.health, let headOnly)):
                answered = true
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                LoopProbe.check(group, within: .seconds(2), on: context.eventLoop).whenComplete { result in
                    let problem: String? = if case .success(let p) = result { p } else { "event loops did not answer" }
                    bound.value.0.send(MetricsEndpoint.probe(problem, headOnly: headOnly), bound.value.1)
                }
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func send(_ answer: MetricsEndpoint.Answer, _ context: ChannelHandlerContext) {
        answered = true
        timer?.cancel()
        guard context.channel.isActive else { return }
        let done = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: answer.bytes)))
        BoundedClose.close(context.channel, after: done)
    }
}

/// `/healthz`: every event loop runs a task within the limit (a stuck loop fails it).
enum LoopProbe {
    /// Nil when all answered; else what is wrong. Called and completed on `first`.
    static func check(_ group: MultiThreadedEventLoopGroup, within limit: TimeAmount, on first: EventLoop) -> EventLoopFuture<String?> {
        let loops = Array(group.makeIterator())
        let answers = loops.map { loop in loop.submit {} }
        let promise = first.makePromise(of: String?.self)
        // Both endings run on `first`; whichever comes first answers.
        let settled = NIOLoopBoundBox(false, eventLoop: first)
        let settle = { @Sendable (problem: String?) in
            guard !settled.value else { return }
            settled.value = true
            promise.succeed(problem)
        }
        let timeout = first.scheduleTask(in: limit) {
            settle("\(loops.count) event loops did not all answer within \(limit.nanoseconds / 1_000_000) ms")
        }
        EventLoopFuture.andAllSucceed(answers, on: first).whenComplete { _ in
            timeout.cancel()
            settle(nil)
        }
        return promise.futureResult
    }
}
