import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Protocol

/// Asks a forward-auth service about one request (nginx `auth_request`, Traefik ForwardAuth)
/// over plain HTTP/1.1, one connection per subrequest. The decision itself is
/// `ForwardAuthExchange`/`ForwardAuthAnswer` in Protocol; this only moves bytes and enforces
/// the deadline. Every way of not getting a usable answer fails closed: a refused or reset
/// connection or no complete answer within `timeout` (from the start of the connect) is 503,
/// an answer that is malformed, oversized or of an unexpected status is 502.
/// At most `maxInFlight` subrequests are open at once (each holds a socket for up to
/// `timeout`), and `maxInFlightPerClient` for one client; beyond that the answer is 503 at
/// once, so a slow or black-holed service cannot turn a request flood into a descriptor
/// flood, nor one client's flood into everyone's refusal.
final class ForwardAuthClient: Sendable {
    let target: ForwardAuthTarget
    let copy: [String]
    let timeout: TimeAmount
    private let inFlight: NIOLockedValueBox<InFlightLimit<ClientKey>>

    init(
        target: ForwardAuthTarget, copy: [String], timeout: TimeAmount = .seconds(5), maxInFlight: Int = 256,
        maxInFlightPerClient: Int = 16
    ) {
        self.target = target
        self.copy = copy
        self.timeout = timeout
        inFlight = NIOLockedValueBox(InFlightLimit(total: maxInFlight, perKey: maxInFlightPerClient))
    }

    convenience init(_ rule: ForwardAuthRule) {
        self.init(target: rule.target, copy: rule.copy, timeout: TimeAmount(rule.timeout))
    }

    /// The answer on `loop`; the future never fails (failures are `.fail` answers).
    /// `client`: whose request it is, for the per-client cap.
    func check(_ original: ForwardAuthOriginal, client: ClientKey? = nil, on loop: EventLoop) -> EventLoopFuture<ForwardAuthAnswer> {
        guard let request = ForwardAuthExchange.request(to: target, for: original) else {
            return loop.makeSucceededFuture(.fail(status: 400, reason: "request fields cannot be passed to forward auth"))
        }
        let refusal = inFlight.withLockedValue { $0.take(client) }
        if let refusal {
            let limit = inFlight.withLockedValue { refusal == .total ? $0.total : $0.perKey }
            let whose = refusal == .total ? "" : " for this client"
            return loop.makeSucceededFuture(.fail(status: 503, reason: "forward auth busy: \(limit) checks in flight\(whose)"))
        }
        let promise = FirstOutcome(loop.makePromise(of: ForwardAuthAnswer.self))
        let counter = inFlight
        promise.future.whenComplete { _ in counter.withLockedValue { $0.release(client) } }
        let copy = self.copy
        let deadline = NIODeadline.now() + timeout
        let timer = loop.scheduleTask(deadline: deadline) {
            promise.settle(.fail(status: 503, reason: "forward auth did not answer within \(self.timeout.nanoseconds / 1_000_000) ms"))
        }
        promise.future.whenComplete { _ in timer.cancel() }
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        OneShotExchangeHandler(request: request, reader: ForwardAuthReader(exchange: ForwardAuthExchange(copy: copy)), result: promise))
                }
            }
            .connect(host: target.host, port: target.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    // Whatever settles the answer (the deadline included) ends the connection.
                    promise.future.whenComplete { _ in channel.close(promise: nil) }
                case .failure(let error):
                    promise.settle(.fail(status: 503, reason: "forward auth unreachable: \(error)"))
                }
            }
        return promise.future
    }
}

/// The forward-auth service's answer, read by `ForwardAuthExchange`.
private struct ForwardAuthReader: OneShotAnswerReader {
    var exchange: ForwardAuthExchange

    mutating func read(_ bytes: ByteBufferView) -> ForwardAuthAnswer? {
        if case .answer(let answer) = exchange.feed(bytes) { return answer }
        return nil
    }

    mutating func end() -> ForwardAuthAnswer { exchange.endOfInput() }

    func failed(_ error: Error) -> ForwardAuthAnswer { .fail(status: 503, reason: "forward auth connection failed: \(error)") }
}
