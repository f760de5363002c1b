import NIOCore
import Protocol

/// What answers the public client of an exchange: an HTTP/1.1 connection, or one stream of
/// an HTTP/2 connection. Called on the public connection's loop.
protocol HTTPExchangeOwner: AnyObject {
    /// The tunnel stream is open: the body may flow.
    func exchangeAttached(_ ex: HTTPExchange)
    /// The response head (first) or its trailers.
    func exchange(_ ex: HTTPExchange, receivedHeaders fields: [HeaderField], endStream: Bool)
    /// Response body bytes; the owner calls `ex.consumed` once they are on their way out.
    func exchange(_ ex: HTTPExchange, receivedBody bytes: ByteBuffer)
    func exchangeResponseEnded(_ ex: HTTPExchange)
    func exchange(_ ex: HTTPExchange, streamClosed code: UInt32)
    /// The exchange failed before its response began: answer with the gateway's error.
    func exchangeFailed(_ ex: HTTPExchange, status: Int, reason: String)
    /// The tunnel cannot take more of the request body for now / again.
    func pauseReading()
    func resumeReading()
}

/// One request on a public HTTP connection and the tunnel stream that carries it. It lives on
/// the public connection's loop: the stream's events arrive here (`StreamEndpoint`) and are
/// handed to its owner, which does all the writing.
final class HTTPExchange: StreamEndpoint {
    typealias Link = TunnelStreamLink<HTTPExchange>

    let requestID: String
    let request: PublicRequest
    let started = NIODeadline.now()
    weak var owner: (any HTTPExchangeOwner)?
    var route: GatewayRegistry.Route?
    /// The client a trusted proxy's X-Forwarded-For names, when the request came through one.
    var forwardedClient: String?
    /// The service's traffic counters, once the stream is open.
    var counters: ServiceCounters?
    private(set) var link: LoopBoundRef<Link>?

    /// `[[policy]] bandwidth`: the request body (and an upgrade's bytes) and the response
    /// body pass these first; nil without a cap, which costs a nil check a read and a write.
    private var upload: BandwidthPacer?
    private var download: BandwidthPacer?
    /// The tunnel cannot take more of the request body for now.
    private var tunnelPaused = false
    /// Body bytes and end read before the stream was open.
    private var early: [ByteBuffer] = []
    private var earlyEnd: [HeaderField]?
    private(set) var requestEnded = false
    var response: PublicResponseHead?
    /// HTTP/1.1: `response` is not written yet; it goes out with the first body bytes.
    var headHeld = false
    var responseComplete = false
    var trailersWritten = false
    var streamClosed = false
    /// The whole request went to the agent and the response timer runs.
    var waitingForResponse = false
    var bytesIn = 0
    var bytesOut = 0
    /// The status the client got (relayed or the gateway's own), for stats and the log.
    var status: Int?
    /// What an access policy answered, when one refused the request (`deny:NAME`,
    /// `limit:NAME`), for the access record.
    var policyDecision: String?
    /// The policies the request passed (listener, route, agent), for authentication.
    var policyCells: [PolicyCell] = []
    /// What authentication added for the upstream (forward-auth fields).
    var authVerdict: AuthVerdict?
    /// The agent's first HEADERS (the response head) arrived.
    private var answered = false
    /// Whom the policies judged (`PolicyEnforcer.requestClient`); nil without policies.
    var requestClient: IPAddress?
    /// Agent policies were checked: the stream must open on that agent (HTTPStreamOpening).
    var pinsAgent = false

    init(requestID: String, request: PublicRequest) {
        self.requestID = requestID
        self.request = request
    }

    var isAttached: Bool { link != nil }

    /// Paces the exchange with `caps` (while it is routed, on the public connection's loop).
    func pace(_ caps: BandwidthCaps?, loop: EventLoop) {
        guard let caps else { return }
        let up = caps.pacer(.upload, on: loop)
        up.sink = { [weak self] bytes in self?.toTunnel(bytes) }
        up.onHold = { [weak self] in self?.owner?.pauseReading() }
        up.onRelease = { [weak self] in
            if let self, !self.tunnelPaused { self.owner?.resumeReading() }
        }
        upload = up
        let down = caps.pacer(.download, on: loop)
        down.sink = { [weak self] bytes in self?.deliver(bytes) }
        download = down
    }

    func attach(_ link: LoopBoundRef<Link>) {
        self.link = link
        for bytes in early { link.run { $0.fromSocket(bytes) } }
        early = []
        if let trailers = earlyEnd.map(upstreamTrailers) { link.run { $0.socketEnded(trailers: trailers) } }
        if streamClosed { link.run { $0.socketFailed() } }
    }

    // MARK: request body (from the client)

    func sendBody(_ bytes: ByteBuffer) {
        bytesIn += bytes.readableBytes
        counters?.bytesIn.add(bytes.readableBytes)
        if let upload { upload.send(bytes) } else { toTunnel(bytes) }
    }

    private func toTunnel(_ bytes: ByteBuffer) {
        if let link { link.run { $0.fromSocket(bytes) } } else { early.append(bytes) }
    }

    func endBody(trailers: [HeaderField]) {
        requestEnded = true
        let end = { [weak self] in
            guard let self else { return }
            if let link = self.link {
                let trailers = self.upstreamTrailers(trailers)
                link.run { $0.socketEnded(trailers: trailers) }
            } else {
                self.earlyEnd = trailers
            }
        }
        if let upload { upload.after(end) } else { end() }
    }

    /// The request's trailers without the fields a forward-auth answer sets (the client may
    /// not send them in the head, nor after the body). The verdict is known once the stream
    /// is open, which is when trailers are sent.
    private func upstreamTrailers(_ trailers: [HeaderField]) -> [HeaderField] {
        guard let removed = authVerdict?.removed, !removed.isEmpty else { return trailers }
        return trailers.filter { !removed.contains($0.name.asciiLowercased()) }
    }

    /// The stream was opened with END_STREAM.
    func requestHadNoBody() {
        requestEnded = true
    }

    /// The client is gone or the exchange was cut short: reset the stream.
    func abort() {
        upload?.stop()
        download?.stop()
        if let link { link.run { $0.socketFailed() } } else { streamClosed = true }
    }

    func consumed(_ n: Int) {
        link?.run { $0.consumed(n) }
    }

    // MARK: StreamEndpoint (the agent's response)

    // Trailers, the end and a clean close come after the body bytes still held; an abort at once.

    func tunnelHeaders(_ fields: [HeaderField], endStream: Bool) {
        if !answered {
            answered = true
            counters?.firstByte.observe(since: started)
        }
        afterResponseBody { $0.owner?.exchange($0, receivedHeaders: fields, endStream: endStream) }
    }

    func writeToSocket(_ bytes: ByteBuffer) {
        if let download { download.send(bytes) } else { deliver(bytes) }
    }

    private func deliver(_ bytes: ByteBuffer) {
        if let owner { owner.exchange(self, receivedBody: bytes) } else { consumed(bytes.readableBytes) }
    }

    func tunnelEnded() {
        afterResponseBody { $0.owner?.exchangeResponseEnded($0) }
    }

    func tunnelClosed(errorCode: UInt32) {
        streamClosed = true
        if errorCode != 0 { download?.stop() }
        afterResponseBody { $0.owner?.exchange($0, streamClosed: errorCode) }
    }

    private func afterResponseBody(_ event: @escaping (HTTPExchange) -> Void) {
        guard let download else { return event(self) }
        download.after { [weak self] in if let self { event(self) } }
    }

    func pauseReading() {
        tunnelPaused = true
        owner?.pauseReading()
    }

    func resumeReading() {
        tunnelPaused = false
        if upload?.isHolding != true { owner?.resumeReading() }
    }
}
