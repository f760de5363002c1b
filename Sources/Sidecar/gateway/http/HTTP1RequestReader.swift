import NIOCore
import Protocol

/// The request side of a public HTTP/1.1 connection as a state machine over the bytes read,
/// apart from the handler's I/O: it cuts request heads off the input, hands bodies on as
/// slices of it, keeps pipelined requests until the handler asks for the next one, and
/// passes an upgraded connection's bytes through.
struct HTTP1RequestReader {
    enum State {
        /// Waiting for, or reading, a request head.
        case head
        /// Reading the current request's body.
        case body(BodyDecoder)
        /// The request is read (or being answered without reading it); what follows waits
        /// for `nextRequest()`.
        case complete
        /// Upgraded: bytes pass as they are.
        case passThrough
        /// The connection is closing: input is ignored.
        case stopped
    }

    enum Event {
        /// A head's first bytes are here and its end is not: `header_timeout` runs from now.
        case headStarted
        /// A whole head; the reader waits in `complete` until told what body follows.
        case head(HTTPHead)
        case bodyData(ByteBuffer)
        case bodyEnd(trailers: [ChunkedDecoder.HeaderLine])
        case passThrough(ByteBuffer)
        /// The input breaks the protocol or a limit: answer `status` and close. The reader
        /// has stopped.
        case refused(status: Int, reason: String)
    }

    private(set) var state = State.head
    private var input = ByteBuffer()
    /// How far the input was searched for the end of a head.
    private var scanned = 0
    /// Body events of the last decoded input, handed out one by one.
    private var pending: [Event] = []
    private var pendingIndex = 0
    let maxHeaderSize: Int
    let maxBodySize: Int?

    init(maxHeaderSize: Int, maxBodySize: Int?) {
        self.maxHeaderSize = maxHeaderSize
        self.maxBodySize = maxBodySize
    }

    var bufferedBytes: Int { input.readableBytes }

    var isReadingBody: Bool {
        if case .body = state { return true }
        return false
    }

    /// The request, body included, has been read to its end.
    var requestRead: Bool {
        if case .complete = state { return true }
        return false
    }

    /// Whether the handler should stop reading the socket: pipelined input behind a request
    /// is bounded by the head limit, and a body is not read before its stream is open.
    func holdsBackInput(streamOpen: Bool) -> Bool {
        switch state {
        case .complete: return input.readableBytes > maxHeaderSize
        case .body, .passThrough: return !streamOpen
        case .head, .stopped: return false
        }
    }

    mutating func append(_ bytes: inout ByteBuffer) {
        if case .stopped = state { return }
        if input.readableBytes == 0 { input = bytes } else { input.writeBuffer(&bytes) }
    }

    // MARK: what the handler decided

    /// After `.head`: the body the request announced follows (none: the request is read).
    mutating func expectBody(_ framing: RequestFraming) {
        guard case .complete = state, framing != .none else { return }
        state = .body(BodyDecoder(BodyFraming(framing)))
    }

    /// The exchange is over and the connection stays: the next head may be read.
    mutating func nextRequest() {
        guard case .complete = state else { return }
        state = .head
    }

    /// The upgrade was accepted: from now on bytes pass through.
    mutating func passThrough() {
        state = .passThrough
    }

    mutating func stop() {
        state = .stopped
        pending.removeAll()
        pendingIndex = 0
    }

    // MARK: events

    /// The next thing the input holds, or nil until more arrives (or the handler moves the
    /// reader on). Body bytes are only taken while `streamOpen`.
    mutating func next(streamOpen: Bool) -> Event? {
        if pendingIndex < pending.count {
            defer { pendingIndex += 1 }
            return pending[pendingIndex]
        }
        switch state {
        case .complete, .stopped:
            return nil
        case .head:
            return readHead()
        case .passThrough:
            guard input.readableBytes > 0 else { return nil }
            return .passThrough(input.readSlice(length: input.readableBytes)!)
        case .body(let decoder):
            guard streamOpen, input.readableBytes > 0 else { return nil }
            return readBody(decoder)
        }
    }

    private mutating func readHead() -> Event? {
        // RFC 9112 §2.2: empty lines before a request line are ignored.
        while scanned == 0, let b = input.getInteger(at: input.readerIndex, as: UInt8.self), b == 13 || b == 10 {
            input.moveReaderIndex(forwardBy: 1)
        }
        guard input.readableBytes > 0 else { return nil }
        let end = input.withUnsafeReadableBytes { HTTPHeadParser.headEnd(in: $0, from: scanned - 3) }
        guard let end, end <= maxHeaderSize else {
            if input.readableBytes > maxHeaderSize || end != nil {
                return refuse(431, "request head is over the limit of \(maxHeaderSize) bytes")
            }
            let started = scanned == 0
            scanned = input.readableBytes
            return started ? .headStarted : nil
        }
        let bytes = input.readSlice(length: end)!
        scanned = 0
        guard let head = bytes.withUnsafeReadableBytes({ HTTPHeadParser.parse(bytes: $0) }) else {
            return refuse(400, "malformed request head")
        }
        state = .complete
        return .head(head)
    }

    private mutating func readBody(_ decoder: BodyDecoder) -> Event? {
        var decoder = decoder
        let result: (events: [BodyDecoder.Event], consumed: Int)
        do {
            result = try decoder.feed(input.readableBytesView)
        } catch {
            return refuse(400, "malformed chunked body: \(error.reason)")
        }
        if let limit = maxBodySize, decoder.bodyBytes > Int64(limit) {
            return refuse(413, "request body is over the limit of \(limit) bytes")
        }
        pending.removeAll(keepingCapacity: true)
        pendingIndex = 0
        for event in result.events {
            switch event {
            case .data(let range):
                pending.append(.bodyData(input.getSlice(at: range.lowerBound, length: range.count)!))
            case .end(let trailers):
                pending.append(.bodyEnd(trailers: trailers))
            }
        }
        input.moveReaderIndex(to: result.consumed)
        state = decoder.isComplete ? .complete : .body(decoder)
        // Chunk framing alone, or a partial chunk-size line: nothing to hand on yet.
        guard !pending.isEmpty else { return nil }
        pendingIndex = 1
        return pending[0]
    }

    private mutating func refuse(_ status: Int, _ reason: String) -> Event {
        stop()
        return .refused(status: status, reason: reason)
    }
}
