import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Protocol

/// A small HTTP/1.1 client for talking to an ACME server: one connection per request
/// (`Connection: close`; an order is a dozen requests, minutes apart at most), TLS through
/// the project's OpenSSL handler with http/1.1 ALPN, every request bounded by a deadline from
/// the start of the connect and a response size cap. The bytes are read by
/// `AcmeHTTPResponseParser` in Protocol.
final class AcmeHTTPClient: Sendable {
    let group: EventLoopGroup
    let timeout: TimeAmount
    let maxBody: Int
    private let tls: TLSContext?
    private let tlsError: TLSError?

    init(trustCAFile: String?, group: EventLoopGroup, timeout: TimeAmount, maxBody: Int = 1 << 20) {
        self.group = group
        self.timeout = timeout
        self.maxBody = maxBody
        do {
            tls = try TLSContext.client(caFile: trustCAFile, alpn: ["http/1.1"])
            tlsError = nil
        } catch {
            tls = nil
            tlsError = error
        }
    }

    /// GET, HEAD or POST `url`; `body` goes with `contentType`.
    func request(
        _ method: String, _ url: String, body: [UInt8]? = nil, contentType: String? = nil,
        accept: String = "application/json"
    ) async throws(AcmeError) -> AcmeHTTPResponse {
        guard let parsed = AcmeURL(url) else { throw AcmeError("not an http(s) URL: \(url.debugDescription)") }
        var head = "\(method) \(parsed.target) HTTP/1.1\r\nHost: \(parsed.authority)\r\nUser-Agent: fastgw-acme\r\n"
        head += "Accept: \(accept)\r\nConnection: close\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        let request = Array((head + "\r\n").utf8) + (body ?? [])
        if parsed.secure, tls == nil {
            throw AcmeError("cannot set up TLS for \(url): \(tlsError?.description ?? "unknown error")")
        }
        let context = parsed.secure ? tls : nil
        let loop = group.next()
        let promise = loop.makePromise(of: AcmeHTTPResponse.self)
        let once = OnceResult(promise)
        let timer = loop.scheduleTask(in: timeout) {
            once.fail(AcmeError("\(method) \(url): no complete answer within \(self.timeout.nanoseconds / 1_000_000_000) s"))
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        let maxBody = self.maxBody
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let context { try sync.addHandler(TLSHandler(context: context, role: .client(serverName: parsed.host))) }
                    try sync.addHandler(
                        AcmeHTTPExchangeHandler(
                            request: request, url: url,
                            parser: AcmeHTTPResponseParser(maxBody: maxBody, bodyless: method == "HEAD"), result: once))
                }
            }
            .connect(host: parsed.host, port: parsed.port)
            .whenComplete { result in
                switch result {
                case .success(let channel): promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                case .failure(let error): once.fail(AcmeError("\(method) \(url): cannot connect: \(error)"))
                }
            }
        do {
            return try await promise.futureResult.get()
        } catch let error as AcmeError {
            throw error
        } catch {
            throw AcmeError("\(method) \(url): \(error)")
        }
    }
}

/// The deadline, the connect and the handler race; the first outcome wins.
private final class OnceResult: Sendable {
    private let promise: EventLoopPromise<AcmeHTTPResponse>
    private let done = NIOLockedValueBox(false)

    init(_ promise: EventLoopPromise<AcmeHTTPResponse>) {
        self.promise = promise
    }

    private func first() -> Bool {
        done.withLockedValue { done in
            defer { done = true }
            return !done
        }
    }

    func succeed(_ response: AcmeHTTPResponse) { if first() { promise.succeed(response) } }
    func fail(_ error: AcmeError) { if first() { promise.fail(error) } }
}

/// Writes the request once connected (the TLS handler holds it until its handshake is done)
/// and feeds the answer to the parser.
private final class AcmeHTTPExchangeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: [UInt8]
    private let url: String
    private var parser: AcmeHTTPResponseParser
    private let result: OnceResult
    private var settled = false

    init(request: [UInt8], url: String, parser: AcmeHTTPResponseParser, result: OnceResult) {
        self.request = request
        self.url = url
        self.parser = parser
        self.result = result
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !settled else { return }
        let buffer = unwrapInboundIn(data)
        do {
            if case .complete(let response) = try parser.feed(buffer.readableBytesView) { settle(context) { $0.succeed(response) } }
        } catch {
            settle(context) { $0.fail(AcmeError("\(url): malformed answer: \(error.reason)")) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            finishAtEnd(context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finishAtEnd(context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        settle(context) { $0.fail(AcmeError("\(url): connection failed: \(error)")) }
    }

    private func finishAtEnd(_ context: ChannelHandlerContext) {
        guard !settled else { return }
        do {
            let response = try parser.endOfInput()
            settle(context) { $0.succeed(response) }
        } catch {
            settle(context) { $0.fail(AcmeError("\(url): \(error.reason)")) }
        }
    }

    private func settle(_ context: ChannelHandlerContext, _ outcome: (OnceResult) -> Void) {
        guard !settled else { return }
        settled = true
        outcome(result)
        context.close(promise: nil)
    }
}
