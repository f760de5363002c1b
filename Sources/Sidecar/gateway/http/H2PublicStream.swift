import CNghttp2
import NIOCore
import Protocol

/// One request stream from a public HTTP/2 client and the exchange that forwards it. Lives
/// on the client connection's loop: the stream's events come from the `TunnelConnection`
/// that runs the client's HTTP/2 session, the response from the exchange.
///
/// Flow control both ways: request DATA is granted back to the client only once handed to
/// the tunnel while it takes more (else when it resumes); response DATA is granted back to
/// the agent once queued below the client stream's watermark (else when it drains).
final class H2PublicStream: TunnelStreamHandler, HTTPExchangeOwner {
    let id: Int32
    private weak var connection: TunnelConnection?
    private let front: H2PublicConnection
    private var exchange: HTTPExchange?
    private var responseStarted = false
    private var trailersSent = false
    /// Accounted for; whatever still arrives is discarded.
    private var done = false
    private var paused = false
    private var owedRequest = 0
    private var owedResponse = 0
    private var requestTrailers: [HeaderField] = []
    private var bodyBytes: Int64 = 0
    private var timer: Scheduled<Void>?

    init(id: Int32, connection: TunnelConnection, front: H2PublicConnection) {
        self.id = id
        self.connection = connection
        self.front = front
    }

    private var gateway: GatewayContext { front.gateway }
    private var settings: HTTPSettings { front.settings }

    /// The request's HEADERS: route it and open its tunnel stream, or answer with an error.
    func begin(fields: [HeaderField], endStream: Bool) {
        let requestID = RequestID.make()
        let headSize = fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        if headSize > settings.maxHeaderSize {
            return refuse(HTTPRefusal(431, "request head is over the limit of \(settings.maxHeaderSize) bytes"), requestID: requestID, fields: fields)
        }
        let request: PublicRequest
        switch PublicRequest.parse(h2: fields, endStream: endStream) {
        case .success(let r): request = r
        case .failure(let r): return refuse(HTTPRefusal(r.status, r.reason), requestID: requestID, fields: fields)
        }
        let ex = HTTPExchange(requestID: requestID, request: request)
        ex.owner = self
        exchange = ex
        gateway.stats.httpRequestsTotal.add()
        switch ex.routing(gateway: gateway, tls: front.tls, loop: front.loop, policy: front.policy, hop: front.hop) {
        case .failure(let refusal):
            answer(ex, refusal)
        case .success(let route):
            if endStream { ex.requestHadNoBody() }
            // Body DATA meanwhile waits in the exchange, held to the stream's window (not consumed).
            let gateway = self.gateway
            ex.authenticate(route, gateway: gateway, policy: front.policy, scheme: "https", loop: front.loop) { [weak self] refusal in
                guard let self, ex === self.exchange, !self.done else {
                    if refusal == nil { ex.abandon(route, gateway: gateway) }
                    return
                }
                if let refusal { return self.answer(ex, refusal) }
                ex.open(route, gateway: gateway, scheme: "https", hop: self.front.hop, addressFields: self.front.addressFields, loop: self.front.loop)
            }
        }
    }

    // MARK: from the client (TunnelStreamHandler)

    func received(headers: [HeaderField], endStream: Bool) {
        // After the request's HEADERS only trailers can come.
        requestTrailers = HopByHop.forwardedTrailers(headers)
    }

    func received(data: ByteBuffer) {
        let n = data.readableBytes
        guard let ex = exchange, !done else {
            connection?.consume(stream: id, bytes: n)
            return
        }
        bodyBytes += Int64(n)
        if let limit = settings.maxBodySize, bodyBytes > Int64(limit) {
            connection?.consume(stream: id, bytes: n)
            ex.abort()
            let reason = "request body is over the limit of \(limit) bytes"
            guard !responseStarted else {
                connection?.reset(stream: id, code: NGHTTP2_CANCEL.rawValue)
                return complete(ex, outcome: reason)
            }
            return answer(ex, status: 413, reason: reason)
        }
        ex.sendBody(data)
        if ex.isAttached && !paused {
            connection?.consume(stream: id, bytes: n)
        } else {
            owedRequest += n
        }
    }

    func remoteEnded() {
        guard let ex = exchange, !done else { return }
        if !ex.requestEnded { ex.endBody(trailers: requestTrailers) }
        armResponseTimer()
    }

    func closed(errorCode: UInt32) {
        timer?.cancel()
        front.streamEnded()
        guard let ex = exchange, !done else { return }
        ex.abort()
        let why = errorCode == 0 ? "the stream closed before the response" : "the client reset the stream (HTTP/2 error \(errorCode))"
        complete(ex, outcome: why)
    }

    func writable() {
        guard owedResponse > 0, let ex = exchange else { return }
        ex.consumed(owedResponse)
        owedResponse = 0
    }

    // MARK: from the exchange (HTTPExchangeOwner)

    func exchangeAttached(_ ex: HTTPExchange) {
        guard ex === exchange, !done else {
            ex.abort()
            return
        }
        let service = gateway.stats.services.counters(for: ex.route?.service ?? "")
        service.connectionsTotal.add()
        ex.counters = service
        resumeReading()
        armResponseTimer()
    }

    func exchange(_ ex: HTTPExchange, receivedHeaders fields: [HeaderField], endStream: Bool) {
        guard ex === exchange, !done, let connection else { return }
        if responseStarted {
            trailersSent = true
            connection.finish(stream: id, trailers: HopByHop.forwardedTrailers(fields))
            return
        }
        guard let statusText = fields[":status"], let status = Int(statusText) else {
            ex.abort()
            return exchangeFailed(ex, status: 502, reason: "the agent sent a response without a status")
        }
        if (100..<200).contains(status) { return }
        if let reason = fields["fastgw-reason"] {
            return exchangeFailed(ex, status: status, reason: reason)
        }
        guard let out = PublicResponseH2.fields(fields) else {
            ex.abort()
            return exchangeFailed(ex, status: 502, reason: "the agent sent a malformed response head")
        }
        timer?.cancel()
        responseStarted = true
        ex.status = status
        connection.respond(stream: id, headers: out, endStream: endStream)
    }

    func exchange(_ ex: HTTPExchange, receivedBody bytes: ByteBuffer) {
        let n = bytes.readableBytes
        guard ex === exchange, responseStarted, !done, let connection else {
            ex.consumed(n)
            return
        }
        ex.bytesOut += n
        ex.counters?.bytesOut.add(n)
        if connection.write(stream: id, bytes) && owedResponse == 0 {
            ex.consumed(n)
        } else {
            owedResponse += n
        }
    }

    func exchangeResponseEnded(_ ex: HTTPExchange) {
        guard ex === exchange, !done else { return }
        guard responseStarted else {
            return exchangeFailed(ex, status: 502, reason: "the agent ended the stream without a response")
        }
        if !trailersSent { connection?.finish(stream: id) }
        if !ex.requestEnded { ex.abort() }  // the rest of the body is not wanted
        complete(ex, outcome: nil)
    }

    func exchange(_ ex: HTTPExchange, streamClosed code: UInt32) {
        guard ex === exchange, !done else { return }
        if !responseStarted {
            let reason = code == 0 ? "the agent closed the stream without a response" : "the agent reset the stream (HTTP/2 error \(code))"
            return exchangeFailed(ex, status: 502, reason: reason)
        }
        connection?.reset(stream: id, code: NGHTTP2_INTERNAL_ERROR.rawValue)
        complete(ex, outcome: "stream reset mid-response (HTTP/2 error \(code))")
    }

    func exchangeFailed(_ ex: HTTPExchange, status: Int, reason: String) {
        guard ex === exchange, !done, !responseStarted else { return }
        answer(ex, status: status, reason: reason)
    }

    func pauseReading() {
        paused = true
    }

    func resumeReading() {
        paused = false
        if owedRequest > 0, exchange?.isAttached == true {
            connection?.consume(stream: id, bytes: owedRequest)
            owedRequest = 0
        }
    }

    // MARK: endings

    /// The gateway's error page as this stream's response.
    private func answer(_ ex: HTTPExchange, status: Int, reason: String) {
        answer(ex, HTTPRefusal(status, reason))
    }

    private func answer(_ ex: HTTPExchange, _ refusal: HTTPRefusal) {
        timer?.cancel()
        var page = HTTPErrorPage(status: refusal.status, reason: refusal.reason, requestID: ex.requestID, extraFields: refusal.fields)
        page.customBody = refusal.body
        page.headOnly = ex.request.method == "HEAD"
        writeError(page)
        ex.status = refusal.status
        let reason = refusal.reason
        // The client may still be sending a body nobody will read: give its window back.
        if owedRequest > 0 {
            connection?.consume(stream: id, bytes: owedRequest)
            owedRequest = 0
        }
        complete(ex, outcome: reason)
    }

    /// A request refused before it was understood.
    private func refuse(_ refusal: HTTPRefusal, requestID: String, fields: [HeaderField]) {
        done = true
        writeError(HTTPErrorPage(status: refusal.status, reason: refusal.reason, requestID: requestID))
        front.accounting.refused(status: refusal.status, reason: refusal.reason, requestID: requestID,
                                 request: "\(fields[":method"] ?? "-") \(fields[":path"] ?? "-")")
    }

    private func writeError(_ page: HTTPErrorPage) {
        guard let connection else { return }
        responseStarted = true
        let headers = [HeaderField(":status", String(page.status))] + page.fields
        // RFC 9113 §8.1: a response to HEAD carries no DATA.
        guard !page.headOnly else { return connection.respond(stream: id, headers: headers, endStream: true) }
        connection.respond(stream: id, headers: headers, endStream: false)
        _ = connection.write(stream: id, ByteBuffer(bytes: page.body))
        connection.finish(stream: id)
    }

    private func complete(_ ex: HTTPExchange, outcome: String?) {
        done = true
        timer?.cancel()
        front.accounting.finished(ex, outcome: outcome)
    }

    /// From the end of the request (sent to the agent) to the response head.
    private func armResponseTimer() {
        guard let ex = exchange, ex.isAttached, ex.requestEnded, !responseStarted, !done, timer == nil else { return }
        let limit = settings.responseTimeout
        timer = front.loop.assumeIsolated().scheduleTask(in: TimeAmount(limit)) { [weak self] in
            guard let self, let ex = self.exchange, !self.responseStarted, !self.done else { return }
            ex.abort()
            self.answer(ex, status: 504, reason: "the agent did not answer within \(limit)")
        }
    }
}
