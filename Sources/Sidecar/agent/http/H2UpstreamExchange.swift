import CNghttp2
import NIOCore
import Protocol

/// One request stream from the gateway carried as a stream of an h2c upstream connection
/// (gRPC and other HTTP/2 servers): HEADERS, DATA and trailers pass through as they are, in
/// both directions. Lives on the tunnel connection's loop, like the upstream connection.
///
/// Flow control chains the two sessions: request DATA is granted back to the gateway once
/// queued below the upstream stream's watermark (else when it drains), response DATA is
/// granted back to the upstream once handed to the tunnel, unless the tunnel asked to pause.
final class H2UpstreamExchange: StreamEndpoint, TunnelStreamHandler {
    typealias Link = TunnelStreamLink<H2UpstreamExchange>

    let service: AgentConfig.Service
    let link: Link
    private let pool: H2UpstreamPool
    private let requestFields: [HeaderField]
    private let requestHasBody: Bool
    private var upstream: TunnelConnection?
    private var upstreamID: Int32 = 0
    private var responseStarted = false
    private var trailersSent = false
    private var finished = false
    private var paused = false
    private var owedToGateway = 0
    private var owedToUpstream = 0
    private var requestTrailers: [HeaderField] = []
    private var status = 0
    private var bytesIn = 0
    private var bytesOut = 0
    /// Called once with the response status (0: none) when the exchange is over.
    var onFinish: ((_ status: Int, _ bytesIn: Int, _ bytesOut: Int, _ failure: String?) -> Void)?

    init(service: AgentConfig.Service, fields: [HeaderField], endStream: Bool, link: Link, pool: H2UpstreamPool) {
        self.service = service
        self.requestFields = UpstreamMessage.h2cRequest(fields)
        self.requestHasBody = !endStream
        self.link = link
        self.pool = pool
    }

    /// Opens the upstream stream; what the gateway sent meanwhile waits in the link.
    func start() {
        pool.acquire(service) { [self] result in
            guard !finished else { return }
            switch result {
            case .success(let connection):
                do {
                    upstreamID = try connection.openStream(headers: requestFields, endStream: !requestHasBody, handler: self)
                } catch {
                    return fail(status: 502, reason: "upstream \(service.upstream): \(error)")
                }
                upstream = connection
                link.attach(LoopBoundRef(self, eventLoop: pool.loop))
            case .failure(let error):
                let (code, reason) = AgentTunnel.classify(error, upstream: service.upstream)
                fail(status: code, reason: reason)
            }
        }
    }

    // MARK: from the gateway (StreamEndpoint)

    func tunnelHeaders(_ fields: [HeaderField], endStream: Bool) {
        requestTrailers = HopByHop.forwardedTrailers(fields)
    }

    func writeToSocket(_ bytes: ByteBuffer) {
        let n = bytes.readableBytes
        guard let upstream, !finished else {
            link.consumed(n)
            return
        }
        bytesIn += n
        if upstream.write(stream: upstreamID, bytes) && owedToGateway == 0 {
            link.consumed(n)
        } else {
            owedToGateway += n
        }
    }

    func tunnelEnded() {
        guard requestHasBody, !finished else { return }
        upstream?.finish(stream: upstreamID, trailers: requestTrailers)
    }

    func tunnelClosed(errorCode: UInt32) {
        guard errorCode != 0, !finished else { return }
        upstream?.reset(stream: upstreamID)
        end(failure: "stream reset by the gateway (HTTP/2 error \(errorCode))")
    }

    func pauseReading() {
        paused = true
    }

    func resumeReading() {
        paused = false
        if owedToUpstream > 0 {
            upstream?.consume(stream: upstreamID, bytes: owedToUpstream)
            owedToUpstream = 0
        }
    }

    // MARK: from the upstream (TunnelStreamHandler)

    func received(headers: [HeaderField], endStream: Bool) {
        guard !finished else { return }
        if responseStarted {
            trailersSent = true
            link.socketEnded(trailers: HopByHop.forwardedTrailers(headers))
            return
        }
        guard let code = headers[":status"].flatMap(Int.init) else {
            upstream?.reset(stream: upstreamID, code: NGHTTP2_PROTOCOL_ERROR.rawValue)
            return fail(status: 502, reason: "upstream sent a response without a status")
        }
        if (100..<200).contains(code) { return }
        status = code
        responseStarted = true
        link.respond(headers: UpstreamMessage.h2cResponse(headers), endStream: endStream)
    }

    func received(data: ByteBuffer) {
        let n = data.readableBytes
        guard !finished, responseStarted else {
            upstream?.consume(stream: upstreamID, bytes: n)
            return
        }
        bytesOut += n
        link.fromSocket(data)
        // fromSocket may have asked this exchange to pause: then the window waits.
        if paused { owedToUpstream += n } else { upstream?.consume(stream: upstreamID, bytes: n) }
    }

    func remoteEnded() {
        guard !finished, responseStarted else { return }
        if !trailersSent { link.socketEnded() }
    }

    func closed(errorCode: UInt32) {
        guard !finished else { return }
        if !responseStarted {
            return fail(status: 502, reason: errorCode == 0
                ? "upstream closed the stream without a response"
                : "upstream reset the stream (HTTP/2 error \(errorCode))")
        }
        if errorCode != 0 {
            link.socketFailed()
            return end(failure: "upstream reset the stream mid-response (HTTP/2 error \(errorCode))")
        }
        end(failure: nil)
    }

    func writable() {
        guard owedToGateway > 0 else { return }
        link.consumed(owedToGateway)
        owedToGateway = 0
    }

    // MARK: endings

    /// No response was sent yet: answer the stream with an error the gateway renders.
    private func fail(status: Int, reason: String) {
        guard !finished else { return }
        link.respond(headers: [HeaderField(":status", String(status)), HeaderField("fastgw-reason", reason)], endStream: true)
        self.status = status
        end(failure: reason)
    }

    private func end(failure: String?) {
        guard !finished else { return }
        finished = true
        onFinish?(status, bytesIn, bytesOut, failure)
        onFinish = nil
    }
}
