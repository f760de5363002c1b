import NIOCore
import Protocol

/// The response side of a public HTTP/1.1 connection: what the exchange hears from the
/// agent, written to the client in HTTP/1.1 framing, and the gateway's own error answers.
extension HTTPServerHandler {
    // MARK: writing

    func write(_ buffer: ByteBuffer, flush: Bool, then: ((Result<Void, Error>) -> Void)? = nil) {
        guard let context else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        if let then { promise.futureResult.assumeIsolated().whenComplete(then) }
        lastWrite = promise.futureResult
        if flush { context.writeAndFlush(wrapOutboundOut(buffer), promise: promise) } else { context.write(wrapOutboundOut(buffer), promise: promise) }
    }

    /// Closes once everything written so far has gone out, or after a grace period if the
    /// client does not read it (BoundedClose).
    func closeAfterWrites() {
        reader.stop()
        timer?.cancel()
        guard let context else { return }
        if let last = lastWrite {
            BoundedClose.close(context.channel, after: last)
        } else {
            context.close(promise: nil)
        }
    }

    func closeNow() {
        reader.stop()
        timer?.cancel()
        context?.close(promise: nil)
    }

    // MARK: the response (called by the exchange, on this loop)

    func exchange(_ ex: HTTPExchange, receivedHeaders fields: [HeaderField], endStream: Bool) {
        guard ex === exchange, !ex.responseComplete else { return }
        if let head = ex.response {
            // Trailers after the body.
            writeHeldHead(ex, flush: head.framing != .chunked)
            if head.framing == .chunked {
                var b = ByteBuffer(string: "0\r\n")
                for f in HopByHop.forwardedTrailers(fields) { b.writeString("\(f.name): \(f.value)\r\n") }
                b.writeString("\r\n")
                write(b, flush: true)
                ex.trailersWritten = true
            }
            if endStream { responseDone(ex) }
            return
        }
        guard let statusText = fields[":status"], let status = Int(statusText) else {
            ex.abort()
            return exchangeFailed(ex, status: 502, reason: "the agent sent a response without a status")
        }
        if (100..<200).contains(status) { return }  // 100 was sent by the gateway itself
        if let reason = fields["fastgw-reason"] {
            // The agent could not reach the upstream: the gateway renders the error.
            return exchangeFailed(ex, status: status, reason: reason)
        }
        if let upgrade = ex.request.upgrade, status == 200, !endStream {
            return switchProtocols(ex, fields: fields, upgrade: upgrade)
        }
        let keepAlive = ex.request.keepAlive && keepsConnection
        guard let head = PublicResponseHead.make(
            fields: fields, requestMethod: ex.request.method, clientVersion: ex.request.version, keepAlive: keepAlive)
        else {
            ex.abort()
            return exchangeFailed(ex, status: 502, reason: "the agent sent a malformed response head")
        }
        timer?.cancel()
        ex.response = head
        ex.status = status
        if endStream || head.framing == .none {
            write(ByteBuffer(bytes: head.bytes), flush: true)
            return responseDone(ex)
        }
        // Held until the first body bytes: if the agent's stream is reset before any (its
        // DATA overran its Content-Length, say), the client still gets a 502, not a head
        // and a cut connection.
        ex.headHeld = true
    }

    /// Writes a response head held back for its body.
    private func writeHeldHead(_ ex: HTTPExchange, flush: Bool) {
        guard ex.headHeld, let head = ex.response else { return }
        ex.headHeld = false
        write(ByteBuffer(bytes: head.bytes), flush: flush)
    }

    /// The upstream accepted the upgrade: 101 to the client, then raw bytes both ways.
    private func switchProtocols(_ ex: HTTPExchange, fields: [HeaderField], upgrade: String) {
        timer?.cancel()
        let head = PublicResponseHead.upgraded(fields: fields, protocol: upgrade)
        ex.response = head
        ex.status = 101
        write(ByteBuffer(bytes: head.bytes), flush: true)
        reader.passThrough()
        resumeReading()
        process()
    }

    func exchange(_ ex: HTTPExchange, receivedBody bytes: ByteBuffer) {
        let n = bytes.readableBytes
        guard ex === exchange, let head = ex.response, !ex.responseComplete, context != nil else {
            ex.consumed(n)
            return
        }
        ex.bytesOut += n
        writeHeldHead(ex, flush: false)
        let counters = ex.counters
        let done: (Result<Void, Error>) -> Void = { result in
            ex.consumed(n)
            if case .success = result { counters?.bytesOut.add(n) }
        }
        if head.framing == .chunked {
            var frame = ByteBuffer(string: String(n, radix: 16) + "\r\n")
            write(frame, flush: false)
            write(bytes, flush: false)
            frame = ByteBuffer(string: "\r\n")
            write(frame, flush: true, then: done)
        } else {
            write(bytes, flush: true, then: done)
        }
    }

    func exchangeResponseEnded(_ ex: HTTPExchange) {
        guard ex === exchange, !ex.responseComplete else { return }
        if ex.response == nil {
            return exchangeFailed(ex, status: 502, reason: "the agent ended the stream without a response")
        }
        responseDone(ex)
    }

    func exchange(_ ex: HTTPExchange, streamClosed code: UInt32) {
        guard ex === exchange, !ex.responseComplete else { return }
        if ex.headHeld {
            // Nothing of the response went out yet: the gateway can still answer instead.
            ex.headHeld = false
            ex.response = nil
            ex.status = nil
        }
        if ex.response == nil {
            let reason = code == 0 ? "the agent closed the stream without a response" : "the agent reset the stream (HTTP/2 error \(code))"
            return exchangeFailed(ex, status: 502, reason: reason)
        }
        // Part of the response went out: the client must see it cut, not complete.
        finishLog(ex, outcome: "stream reset mid-response (HTTP/2 error \(code))")
        exchange = nil
        closeNow()
    }

    private func responseDone(_ ex: HTTPExchange) {
        guard let head = ex.response else { return }
        writeHeldHead(ex, flush: true)
        if head.framing == .chunked && !ex.trailersWritten {
            write(ByteBuffer(string: "0\r\n\r\n"), flush: true)
        }
        ex.responseComplete = true
        finishLog(ex, outcome: nil)
        exchange = nil
        let read = reader.requestRead
        // Not all of the request went to the agent (a refused upgrade, a half-read body):
        // the stream is reset.
        if !read || !ex.requestEnded { ex.abort() }
        if nextRequestOrClose(keepAlive: head.keepAlive && read) {
            resumeReading()
            process()
        }
    }

    /// After an exchange: wait for the next request (quietly closed after `idle_timeout`), or
    /// close once everything written has gone out.
    private func nextRequestOrClose(keepAlive: Bool) -> Bool {
        if keepAlive && keepsConnection {
            reader.nextRequest()
            armTimer(settings.idleTimeout) { $0.headerTimedOut() }
            return true
        }
        closeAfterWrites()
        return false
    }

    // MARK: errors

    /// An error for a request that never got a stream; the connection stays open when the
    /// request had no body to skip.
    func answer(_ ex: HTTPExchange, _ refusal: HTTPRefusal) {
        _ = endWithError(ex, refusal, canKeepAlive: ex.request.framing == .none)
    }

    /// The exchange failed before its response began: the gateway answers with an error.
    func exchangeFailed(_ ex: HTTPExchange, status: Int, reason: String) {
        failed(ex, HTTPRefusal(status, reason))
    }

    /// The current exchange ends with `refusal` before its response began (its stream failed
    /// to open, or authentication refused it after routing).
    func failed(_ ex: HTTPExchange, _ refusal: HTTPRefusal) {
        guard ex === exchange, ex.response == nil else { return }
        exchange = nil
        // Reading paused for this exchange (while its stream opened, or the tunnel was full).
        resumeReading()
        let kept = endWithError(ex, refusal, canKeepAlive: reader.requestRead)
        // A stream the request side never ended (an upgrade, a body cut short) is reset.
        if !kept || !ex.requestEnded { ex.abort() }
        if kept { process() }
    }

    /// Writes the gateway's error page as the exchange's response; true when the connection
    /// waits for another request.
    private func endWithError(_ ex: HTTPExchange, _ refusal: HTTPRefusal, canKeepAlive: Bool) -> Bool {
        let keep = canKeepAlive && ex.request.keepAlive && keepsConnection
        var page = HTTPErrorPage(
            status: refusal.status, reason: refusal.reason, requestID: ex.requestID, keepAlive: keep, extraFields: refusal.fields)
        page.customBody = refusal.body
        page.headOnly = ex.request.method == "HEAD"
        write(ByteBuffer(bytes: page.bytes), flush: true)
        ex.status = refusal.status
        ex.responseComplete = true
        finishLog(ex, outcome: refusal.reason)
        return nextRequestOrClose(keepAlive: keep)
    }

    /// The body turned out bad or too large after the stream opened.
    func refuseMidBody(_ ex: HTTPExchange, status: Int, reason: String) {
        if ex.response == nil || ex.headHeld {
            writeError(status: status, reason: reason, requestID: ex.requestID, keepAlive: false)
            ex.status = status
        }
        ex.responseComplete = true
        exchange = nil
        finishLog(ex, outcome: reason)
        closeAfterWrites()
    }

    /// A request refused before it was understood: answer and close.
    func refuse(status: Int, reason: String, requestID: String = RequestID.make(), head: HTTPHead? = nil) {
        writeError(status: status, reason: reason, requestID: requestID, keepAlive: false)
        accounting.refused(status: status, reason: reason, requestID: requestID,
                           request: head.map { $0.startLine.prefix(2).joined(separator: " ") } ?? "-")
        closeAfterWrites()
    }

    private func writeError(status: Int, reason: String, requestID: String, keepAlive: Bool) {
        let page = HTTPErrorPage(status: status, reason: reason, requestID: requestID, keepAlive: keepAlive)
        write(ByteBuffer(bytes: page.bytes), flush: true)
    }

    // MARK: accounting

    private var accounting: HTTPAccounting {
        HTTPAccounting(gateway: gateway, listener: listener, client: clientAddress)
    }

    func finishLog(_ ex: HTTPExchange, outcome: String?) {
        accounting.finished(ex, outcome: outcome)
    }
}
