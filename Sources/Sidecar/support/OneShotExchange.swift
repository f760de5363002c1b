import NIOConcurrencyHelpers
import NIOCore

/// Reads the answer of a one-request client connection (forward auth, ACME): the pure
/// parsers in Protocol decide, this only says what an outcome is at each point.
protocol OneShotAnswerReader {
    associatedtype Outcome: Sendable
    /// The outcome once `bytes` complete or spoil the answer; nil while more is needed.
    mutating func read(_ bytes: ByteBufferView) -> Outcome?
    /// The peer ended its side (or the connection went away) before an outcome.
    mutating func end() -> Outcome
    /// The connection failed (reset, TLS error) before an outcome.
    func failed(_ error: Error) -> Outcome
}

/// The deadline, the connect and the handler race to settle one request; the first wins and
/// the others are ignored.
final class FirstOutcome<Value: Sendable>: Sendable {
    private let promise: EventLoopPromise<Value>
    private let done = NIOLockedValueBox(false)

    init(_ promise: EventLoopPromise<Value>) {
        self.promise = promise
    }

    var future: EventLoopFuture<Value> { promise.futureResult }

    func settle(_ value: Value) {
        let first = done.withLockedValue { done in
            defer { done = true }
            return !done
        }
        if first { promise.succeed(value) }
    }
}

/// Writes one request once the channel is active (a TLS handler ahead of it holds the bytes
/// until its handshake is done), feeds the answer to `reader`, settles `result` once and
/// closes the connection.
final class OneShotExchangeHandler<Reader: OneShotAnswerReader>: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: [UInt8]
    private var reader: Reader
    private let result: FirstOutcome<Reader.Outcome>
    private var settled = false

    init(request: [UInt8], reader: Reader, result: FirstOutcome<Reader.Outcome>) {
        self.request = request
        self.reader = reader
        self.result = result
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !settled else { return }
        if let outcome = reader.read(unwrapInboundIn(data).readableBytesView) { settle(outcome, context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            if !settled { settle(reader.end(), context) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !settled { settle(reader.end(), context) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !settled { settle(reader.failed(error), context) }
        context.close(promise: nil)
    }

    private func settle(_ outcome: Reader.Outcome, _ context: ChannelHandlerContext) {
        settled = true
        result.settle(outcome)
        context.close(promise: nil)
    }
}
