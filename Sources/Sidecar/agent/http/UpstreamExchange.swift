import CNghttp2
import NIOCore
import Protocol

/// One request stream from the gateway carried over an upstream HTTP/1.1 connection: the
/// request is written as HTTP/1.1 (body chunked when its length is unknown), the response is
/// parsed and streamed back as HEADERS, DATA and trailers. Everything runs on the tunnel
/// connection's loop, where the pool's connections live too.
final class UpstreamExchange: StreamEndpoint {
    typealias Link = TunnelStreamLink<UpstreamExchange>

    private enum ResponsePhase {
        case head
        case body(BodyDecoder)
        /// Upgraded: bytes flow as they are, both ways, until the upstream closes.
        case tunnel
        case done

        var isDone: Bool {
            if case .done = self { return true }
            return false
        }
    }

    let service: AgentConfig.Service
    let request: UpstreamMessage.Request
    let link: Link
    /// The PROXY header a new upstream connection starts with (`proxy_protocol`).
    private let preamble: [UInt8]?
    private let pool: UpstreamPool
    private var upstream: UpstreamConnectionHandler?
    private var reused = false
    private var inbound: ByteBuffer?
    private var scanned = 0
    private var phase = ResponsePhase.head
    private var requestSent = false
    private var requestTrailers: [HeaderField] = []
    private var finished = false
    /// Called once with the response status (0: none) when the exchange is over.
    var onFinish: ((_ status: Int, _ bytesIn: Int, _ bytesOut: Int, _ failure: String?) -> Void)?
    private var status = 0
    private var bytesIn = 0
    private var bytesOut = 0

    init(service: AgentConfig.Service, request: UpstreamMessage.Request, preamble: [UInt8]?, link: Link, pool: UpstreamPool) {
        self.service = service
        self.request = request
        self.preamble = preamble
        self.link = link
        self.pool = pool
    }

    /// Takes an upstream connection and writes the request head.
    func start() {
        pool.acquire(service, preamble: preamble) { [self] result in
            switch result {
            case .success(let (handler, reused)):
                guard !finished else {
                    pool.release(handler, service: service)
                    return
                }
                self.upstream = handler
                self.reused = reused
                handler.take(for: self)
                handler.write(ByteBuffer(bytes: request.head.serialized()))
                if request.framing == .none && request.upgrade == nil { requestSent = true }
                link.attach(LoopBoundRef(self, eventLoop: pool.loop))
            case .failure(let error):
                let (code, reason) = AgentTunnel.classify(error, upstream: service.upstream)
                fail(status: code, reason: reason)
            }
        }
    }

    // MARK: request body (StreamEndpoint: from the gateway)

    func tunnelHeaders(_ fields: [HeaderField], endStream: Bool) {
        // Request trailers: written after the last chunk.
        requestTrailers += HopByHop.forwardedTrailers(fields)
    }

    func writeToSocket(_ bytes: ByteBuffer) {
        let n = bytes.readableBytes
        if case .tunnel = phase, let upstream {
            bytesIn += n
            upstream.write(bytes) { [link] _ in link.consumed(n) }
            return
        }
        guard let upstream, request.framing != .none else {
            link.consumed(n)
            return
        }
        bytesIn += n
        if request.framing == .chunked {
            upstream.write(ByteBuffer(string: String(n, radix: 16) + "\r\n"))
            upstream.write(bytes)
            upstream.write(ByteBuffer(string: "\r\n")) { [link] _ in link.consumed(n) }
        } else {
            upstream.write(bytes) { [link] _ in link.consumed(n) }
        }
    }

    func tunnelEnded() {
        guard !requestSent else { return }
        requestSent = true
        if case .tunnel = phase {
            upstream?.closeOutput()
            return
        }
        if request.framing == .chunked {
            var end = ByteBuffer(string: "0\r\n")
            for f in requestTrailers { end.writeString("\(f.name): \(f.value)\r\n") }
            end.writeString("\r\n")
            upstream?.write(end)
        }
        finishIfDone()
    }

    func tunnelClosed(errorCode: UInt32) {
        guard !finished else { return }
        if errorCode != 0 {
            // The gateway gave up (client gone, timeout): this connection is mid-message.
            end(failure: "stream reset by the gateway (HTTP/2 error \(errorCode))", reusable: false)
        }
    }

    func pauseReading() {
        upstream?.pauseReading()
    }

    func resumeReading() {
        upstream?.resumeReading()
    }

    // MARK: response (from the upstream connection)

    func upstreamRead(_ bytes: ByteBuffer) {
        var bytes = bytes
        if inbound == nil || inbound!.readableBytes == 0 { inbound = bytes } else { inbound!.writeBuffer(&bytes) }
        process()
    }

    private func process() {
        while !finished, var buffer = inbound, buffer.readableBytes > 0 {
            switch phase {
            case .done:
                return
            case .tunnel:
                bytesOut += buffer.readableBytes
                link.fromSocket(buffer)
                inbound = nil
                return
            case .head:
                let end = buffer.withUnsafeReadableBytes { HTTPHeadParser.headEnd(in: $0, from: scanned - 3) }
                guard let end else {
                    scanned = buffer.readableBytes
                    if scanned > 64 << 10 { fail(status: 502, reason: "upstream response head is over 64 KiB") }
                    return
                }
                let headBytes = buffer.readSlice(length: end)!
                inbound = buffer
                scanned = 0
                guard let head = headBytes.withUnsafeReadableBytes({ HTTPHeadParser.parse(bytes: $0) }),
                      let status = UpstreamMessage.status(of: head)
                else { return fail(status: 502, reason: "upstream sent a malformed response head") }
                if request.upgrade != nil, status >= 200 || status == 101 {
                    switch UpstreamMessage.upgradeAnswer(status: status) {
                    case .switched:
                        self.status = 101
                        link.respond(headers: UpstreamMessage.upgradeFields(head), endStream: false)
                        phase = .tunnel
                        continue
                    case .failed(let reason):
                        return fail(status: 502, reason: reason)
                    case .relayed:
                        break
                    }
                }
                if (100..<200).contains(status) { continue }  // 100 Continue, 103 Early Hints: not relayed
                let framing: BodyFraming
                switch BodyFraming.ofResponse(head, status: status, requestMethod: request.method) {
                case .success(let f): framing = f
                case .failure(let r): return fail(status: 502, reason: r.reason)
                }
                self.status = status
                self.responseReusable = UpstreamMessage.isReusable(head, framing: framing)
                let fields = UpstreamMessage.responseFields(head, status: status, framing: framing)
                link.respond(headers: fields, endStream: framing == .none)
                phase = framing == .none ? .done : .body(BodyDecoder(framing))
                if framing == .none { return responseEnded() }
            case .body(var decoder):
                let result: (events: [BodyDecoder.Event], consumed: Int)
                do {
                    result = try decoder.feed(buffer.readableBytesView)
                } catch {
                    link.socketFailed()
                    return end(failure: "malformed upstream body: \(error.reason)", reusable: false)
                }
                for event in result.events {
                    switch event {
                    case .data(let range):
                        bytesOut += range.count
                        link.fromSocket(buffer.getSlice(at: range.lowerBound, length: range.count)!)
                    case .end(let trailers):
                        link.socketEnded(trailers: HopByHop.forwardedTrailers(trailers))
                    }
                }
                buffer.moveReaderIndex(to: result.consumed)
                inbound = buffer
                if decoder.isComplete {
                    phase = .done
                    return responseEnded()
                }
                phase = .body(decoder)
            }
        }
    }

    private var responseReusable = false

    private func responseEnded() {
        // Bytes after the response that nobody asked for: do not reuse the connection.
        if inbound?.readableBytes ?? 0 > 0 { responseReusable = false }
        finishIfDone()
    }

    /// Both directions are over: give the connection back, or close it.
    private func finishIfDone() {
        guard phase.isDone, !finished else { return }
        if !requestSent {
            // The upstream answered before reading the whole body (e.g. 413): the connection
            // is mid-request. The rest of the body is dropped as it comes; the gateway resets
            // the stream once it has the whole response (a reset from here could overtake
            // the response's last DATA frames). `end` closes the connection after detaching
            // it, so its close is not taken for the upstream's.
            return end(failure: nil, reusable: false)
        }
        end(failure: nil, reusable: responseReusable)
    }

    func upstreamClosed() {
        guard !finished else { return }
        if case .tunnel = phase {
            phase = .done
            link.socketEnded()
            return end(failure: nil, reusable: false)
        }
        if case .body(var decoder) = phase, decoder.endOfInput() {
            phase = .done
            link.socketEnded()
            return end(failure: nil, reusable: false)
        }
        if case .head = phase, status == 0 {
            return fail(status: 502, reason: reused && bytesOut == 0
                ? "upstream closed a kept-alive connection before answering"
                : "upstream closed the connection before answering")
        }
        link.socketFailed()
        end(failure: "upstream closed the connection mid-response", reusable: false)
    }

    /// No response was sent yet: answer the stream with an error the gateway renders.
    private func fail(status: Int, reason: String) {
        guard !finished else { return }
        if self.status == 0 {
            link.respond(headers: [HeaderField(":status", String(status)), HeaderField("fastgw-reason", reason)], endStream: true)
        } else {
            link.socketFailed()
        }
        end(failure: reason, reusable: false, status: status)
    }

    /// Detaches the upstream connection before giving it back or closing it, so a close
    /// never comes back here as the upstream's.
    private func end(failure: String?, reusable: Bool, status: Int? = nil) {
        guard !finished else { return }
        finished = true
        if let upstream {
            upstream.exchange = nil
            if reusable { pool.release(upstream, service: service) } else { upstream.close() }
        }
        upstream = nil
        onFinish?(status ?? self.status, bytesIn, bytesOut, failure)
        onFinish = nil
    }
}
