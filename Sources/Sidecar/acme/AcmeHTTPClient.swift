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
        let once = FirstOutcome(loop.makePromise(of: Result<AcmeHTTPResponse, AcmeError>.self))
        let timer = loop.scheduleTask(in: timeout) {
            once.settle(.failure(AcmeError("\(method) \(url): no complete answer within \(self.timeout.nanoseconds / 1_000_000_000) s")))
        }
        once.future.whenComplete { _ in timer.cancel() }
        let maxBody = self.maxBody
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let context { try sync.addHandler(TLSHandler(context: context, role: .client(serverName: parsed.host))) }
                    try sync.addHandler(
                        OneShotExchangeHandler(
                            request: request,
                            reader: AcmeAnswerReader(url: url, parser: AcmeHTTPResponseParser(maxBody: maxBody, bodyless: method == "HEAD")),
                            result: once))
                }
            }
            .connect(host: parsed.host, port: parsed.port)
            .whenComplete { result in
                switch result {
                case .success(let channel): once.future.whenComplete { _ in channel.close(promise: nil) }
                case .failure(let error): once.settle(.failure(AcmeError("\(method) \(url): cannot connect: \(error)")))
                }
            }
        let outcome: Result<AcmeHTTPResponse, AcmeError>
        do {
            outcome = try await once.future.get()
        } catch {
            throw AcmeError("\(method) \(url): \(error)")
        }
        return try outcome.get()
    }
}

/// An ACME server's answer, read by `AcmeHTTPResponseParser`.
private struct AcmeAnswerReader: OneShotAnswerReader {
    let url: String
    var parser: AcmeHTTPResponseParser

    mutating func read(_ bytes: ByteBufferView) -> Result<AcmeHTTPResponse, AcmeError>? {
        do {
            if case .complete(let response) = try parser.feed(bytes) { return .success(response) }
            return nil
        } catch {
            return .failure(AcmeError("\(url): malformed answer: \(error.reason)"))
        }
    }

    mutating func end() -> Result<AcmeHTTPResponse, AcmeError> {
        do {
            return .success(try parser.endOfInput())
        } catch {
            return .failure(AcmeError("\(url): \(error.reason)"))
        }
    }

    func failed(_ error: Error) -> Result<AcmeHTTPResponse, AcmeError> {
        .failure(AcmeError("\(url): connection failed: \(error)"))
    }
}
