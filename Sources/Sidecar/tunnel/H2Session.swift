import CNghttp2
import NIOCore
import Protocol

/// One HTTP/2 connection over nghttp2, independent of any socket: bytes go in with
/// `receive`, frames come out of `drainOutput`, and everything that happened is in `events`.
/// Used as the client by the gateway and as the server by the agent (reversed roles), and
/// over any carrier that moves bytes.
///
/// Flow control is manual (DESIGN §2.3): received DATA is granted back to the peer only when
/// the owner calls `consume` after writing it out, and outgoing DATA is pulled from per-stream
/// queues that the owner keeps below `sendWatermark` by pausing its sources.
final class H2Session {
    let role: H2Role
    let tuning: H2Tuning
    let allocator: ByteBufferAllocator
    fileprivate(set) var session: OpaquePointer!
    var events: [H2Event] = []
    var streams: [Int32: H2StreamState] = [:]

    /// Output assembled by the send callbacks: control frames are copied into `scratch`,
    /// DATA payloads are appended as slices of the owner's buffers (no copy).
    var output: [ByteBuffer] = []
    var scratch: ByteBuffer
    /// Streams whose body was sent and whose trailers go next: submitted outside the callbacks.
    var trailersDue: [(Int32, [HeaderField])] = []
    /// Headers being received, per stream, until the HEADERS frame completes.
    var incomingHeaders: [Int32: IncomingHeaders] = [:]
    /// DATA bytes read in the current `receive` call, granted back to the connection after it.
    var receivedSinceGrant = 0
    /// What streams may still grow their receive windows by, shared by the connection.
    var windowBudget: StreamWindowBudget
    /// DATA frames sent so far: progress a peer cannot fake with PINGs.
    var dataFramesSent = 0

    init(role: H2Role, tuning: H2Tuning, allocator: ByteBufferAllocator) throws(H2Error) {
        self.role = role
        self.tuning = tuning
        self.allocator = allocator
        self.scratch = allocator.buffer(capacity: 4096)
        self.windowBudget = StreamWindowBudget(limit: tuning.windowGrowthBudget)
        try createSession()
        try submitSettings()
    }

    deinit {
        nghttp2_session_del(session)
    }

    private func createSession() throws(H2Error) {
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else {
            throw H2Error(description: "nghttp2: out of memory")
        }
        defer { nghttp2_session_callbacks_del(callbacks) }
        H2Callbacks.install(on: callbacks)

        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else {
            throw H2Error(description: "nghttp2: out of memory")
        }
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        // Closed streams are kept for the priority tree only, which fastgw does not use; with
        // 100,000 concurrent streams allowed they would add up to tens of MiB.
        nghttp2_option_set_no_closed_streams(option, 1)
        // Our peer is another fastgw; many tunnel streams are normal.
        nghttp2_option_set_peer_max_concurrent_streams(option, UInt32(tuning.maxConcurrentStreams))
        if tuning.trustsPeerResets {
            // nghttp2 answers more than 1,000 RST_STREAM in a burst (33/s after) with GOAWAY, a
            // defence against rapid-reset floods from untrusted clients. On the tunnel the
            // gateway resets a stream for every public client that aborts, which an attacker
            // can make as frequent as they like: the agent must take them all.
            nghttp2_option_set_stream_reset_rate_limit(option, 1 << 50, 1 << 40)
        }

        var s: OpaquePointer?
        let me = Unmanaged.passUnretained(self).toOpaque()
        let rc: Int32
        switch role {
        case .client: rc = nghttp2_session_client_new2(&s, callbacks, me, option)
        case .server: rc = nghttp2_session_server_new2(&s, callbacks, me, option)
        }
        guard rc == 0, let s else { throw H2Error(description: "nghttp2: cannot create session (\(rc))") }
        session = s
    }

    private func submitSettings() throws(H2Error) {
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                                   value: UInt32(tuning.maxConcurrentStreams)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                                   value: UInt32(tuning.initialStreamWindow)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                                   value: UInt32(tuning.maxHeaderListSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue),
                                   value: UInt32(tuning.maxFrameSize)),
        ]
        if role == .server && tuning.extendedConnect {
            // RFC 8441: upgrades (WebSocket) arrive as CONNECT streams with :protocol.
            settings.append(nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL.rawValue), value: 1))
        }
        var rc = nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        guard rc == 0 else { throw H2Error(description: "nghttp2: cannot submit SETTINGS (\(rc))") }
        rc = nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(tuning.connectionWindow))
        guard rc == 0 else { throw H2Error(description: "nghttp2: cannot set connection window (\(rc))") }
    }

    // MARK: input

    /// Feeds received bytes. Throws on a protocol violation; the GOAWAY nghttp2 queued for it
    /// is still in `drainOutput`.
    func receive(_ buffer: ByteBuffer) throws(H2Error) {
        let rc = buffer.withUnsafeReadableBytes { raw in
            nghttp2_session_mem_recv(session, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count)
        }
        if rc < 0 {
            throw H2Error(description: "HTTP/2 protocol error: \(String(cString: nghttp2_strerror(Int32(rc))))")
        }
        // The connection window is granted back as soon as DATA arrives: no stream, however
        // slow its reader, can hold it (docs/architecture.md, "Flow control").
        if receivedSinceGrant > 0 {
            nghttp2_session_consume_connection(session, receivedSinceGrant)
            receivedSinceGrant = 0
        }
    }

    // MARK: output

    /// Serialises every frame nghttp2 is ready to send. The buffers are meant for one
    /// gathering write followed by one flush.
    func drainOutput() throws(H2Error) -> [ByteBuffer] {
        var rc = nghttp2_session_send(session)
        // Trailers go after the last DATA frame, which the read callback has just marked.
        while rc == 0 && !trailersDue.isEmpty {
            let due = trailersDue
            trailersDue.removeAll()
            for (id, fields) in due {
                _ = Self.withNV(fields) { nva, count in nghttp2_submit_trailer(session, id, nva, count) }
            }
            rc = nghttp2_session_send(session)
        }
        if rc != 0 {
            throw H2Error(description: "HTTP/2 send failed: \(String(cString: nghttp2_strerror(rc)))")
        }
        sealScratch()
        let out = output
        output.removeAll(keepingCapacity: true)
        return out
    }

    func sealScratch() {
        if scratch.readableBytes > 0 {
            output.append(scratch)
            scratch = allocator.buffer(capacity: 4096)
        }
    }

    var isFinished: Bool {
        nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
    }

    // MARK: streams

    /// Opens a stream (client role) whose request body is fed with `write` / `finish`.
    /// With `endStream` the request has no body.
    func openStream(headers: [HeaderField], endStream: Bool = false) throws(H2Error) -> Int32 {
        // nghttp2 would queue a stream over the peer's limit until one ends, which for a peer
        // that allows none is forever: refuse it now so the caller can go elsewhere.
        guard !atPeerStreamLimit else {
            throw H2Error(description: "the peer allows no more than \(peerStreamLimit) concurrent streams")
        }
        var provider = H2Callbacks.dataProvider
        let id = Self.withNV(headers) { nva, count in
            endStream ? nghttp2_submit_request(session, nil, nva, count, nil, nil)
                : nghttp2_submit_request(session, nil, nva, count, &provider, nil)
        }
        guard id > 0 else {
            throw H2Error(description: "cannot open stream: \(String(cString: nghttp2_strerror(id)))")
        }
        streams[id] = H2StreamState(window: tuning)
        return id
    }

    /// Answers a stream (server role). With `endStream` no body follows.
    func respond(stream: Int32, headers: [HeaderField], endStream: Bool) {
        var provider = H2Callbacks.dataProvider
        let rc: Int32 = Self.withNV(headers) { nva, count in
            if endStream {
                return nghttp2_submit_response(session, stream, nva, count, nil)
            }
            return nghttp2_submit_response(session, stream, nva, count, &provider)
        }
        if rc != 0 { reset(stream: stream, code: NGHTTP2_INTERNAL_ERROR.rawValue) }
    }

    /// Queues payload for the stream; returns false once the queue is above the watermark
    /// (the caller should stop reading its source until `.writable`).
    @discardableResult
    func write(stream: Int32, _ bytes: ByteBuffer) -> Bool {
        guard let state = streams[stream], !state.endQueued else { return false }
        if bytes.readableBytes > 0 {
            state.outbound.append(bytes)
            state.queued += bytes.readableBytes
        }
        resumeIfDeferred(stream, state)
        if state.queued >= tuning.sendWatermark {
            state.aboveWatermark = true
            return false
        }
        return true
    }

    /// Queues END_STREAM after whatever is queued (a half-close), carried by a trailing
    /// HEADERS frame when `trailers` are given.
    func finish(stream: Int32, trailers: [HeaderField] = []) {
        guard let state = streams[stream], !state.endQueued else { return }
        state.endQueued = true
        if !trailers.isEmpty { state.trailers = trailers }
        resumeIfDeferred(stream, state)
    }

    private func resumeIfDeferred(_ id: Int32, _ state: H2StreamState) {
        if state.deferred {
            state.deferred = false
            nghttp2_session_resume_data(session, id)
        }
    }

    /// SETTINGS_MAX_CONCURRENT_STREAMS of the peer (nghttp2's assumption until it arrives).
    var peerStreamLimit: Int {
        Int(nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS))
    }

    /// Client role: as many streams open as the peer allows.
    var atPeerStreamLimit: Bool { streams.count >= peerStreamLimit }

    /// Whether any stream has bytes waiting for the peer's window.
    var hasQueuedOutput: Bool {
        streams.values.contains { $0.queued > 0 }
    }

    func reset(stream: Int32, code: UInt32 = NGHTTP2_CANCEL.rawValue) {
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, code)
    }

    /// Grants `bytes` of the stream's window back to the peer after they were written to
    /// their destination, and widens the window of a stream whose reader keeps up.
    func consume(stream: Int32, bytes: Int) {
        guard bytes > 0, let state = streams[stream] else { return }
        nghttp2_session_consume_stream(session, stream, bytes)
        state.unconsumed = max(0, state.unconsumed - bytes)
        if let grown = state.receiveWindow.consumed(bytes, budget: &windowBudget) {
            nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, Int32(grown))
        }
    }

    /// Bytes received on all streams and not yet written to their destinations.
    var unconsumedBytes: Int {
        streams.values.reduce(0) { $0 + $1.unconsumed }
    }

    func queuedBytes(stream: Int32) -> Int {
        streams[stream]?.queued ?? 0
    }

    // MARK: connection

    func ping(opaque: UInt64) {
        var value = opaque.bigEndian
        withUnsafeBytes(of: &value) { raw in
            _ = nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), raw.baseAddress?.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// Server only: GOAWAY with the highest stream id (RFC 9113 §6.8), so the client stops
    /// opening streams while those already on the wire are still served. A real GOAWAY
    /// follows once a PING round trip proves the client has seen it.
    func shutdownNotice() {
        nghttp2_submit_shutdown_notice(session)
    }

    /// GOAWAY naming the last stream the peer opened: streams in flight complete, no new ones.
    func goaway(code: UInt32 = NGHTTP2_NO_ERROR.rawValue) {
        let last = nghttp2_session_get_last_proc_stream_id(session)
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, code, nil, 0)
    }

    /// Name/value pairs as `nghttp2_nv`, valid for the duration of `body`; nghttp2 copies them.
    static func withNV<R>(_ headers: [HeaderField], _ body: (UnsafePointer<nghttp2_nv>?, Int) -> R) -> R {
        var bytes: [UInt8] = []
        var spans: [(Int, Int, Int, Int)] = []
        for h in headers {
            let n = bytes.count
            bytes.append(contentsOf: h.name.utf8)
            let v = bytes.count
            bytes.append(contentsOf: h.value.utf8)
            spans.append((n, v - n, v, bytes.count - v))
        }
        return bytes.withUnsafeMutableBufferPointer { raw in
            guard let base = raw.baseAddress else { return body([], 0) }
            let nva = spans.map { s in
                nghttp2_nv(name: base + s.0, value: base + s.2, namelen: s.1, valuelen: s.3,
                           flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nva.withUnsafeBufferPointer { body($0.baseAddress, $0.count) }
        }
    }
}

/// Per-stream state: the send queue (the owner's buffers waiting for window) and the receive
/// window's size and use.
final class H2StreamState {
    var outbound = CircularBuffer<ByteBuffer>()
    var queued = 0
    var endQueued = false
    /// Sent as a HEADERS frame after the last DATA, ending the stream instead of it.
    var trailers: [HeaderField]?
    /// nghttp2 was told "no data yet" and must be resumed when some arrives.
    var deferred = false
    var aboveWatermark = false
    /// Received DATA not yet reported written by the owner.
    var unconsumed = 0
    var receiveWindow: StreamReceiveWindow

    init(window tuning: H2Tuning) {
        receiveWindow = StreamReceiveWindow(initial: tuning.initialStreamWindow, maximum: tuning.streamWindow)
    }
}

/// A complete header block being assembled, with what it cost so far: decoded bytes are
/// bounded while they arrive, not after the block (an HPACK bomb expands a few bytes of
/// input into megabytes of fields).
struct IncomingHeaders {
    var fields: [HeaderField] = []
    var bytes = 0
    /// Over the limit: further fields are dropped, and the block is reported as too large.
    var tooLarge = false

    /// Counts a field of `size` bytes before anything is copied; past a limit the fields are
    /// dropped and the rest of the block is only decoded (HPACK state must stay in step).
    mutating func add(size: Int, within tuning: H2Tuning, _ field: () -> HeaderField) {
        guard !tooLarge else { return }
        bytes += size
        if bytes > tuning.maxHeaderListSize || fields.count >= tuning.maxHeaderFields {
            tooLarge = true
            fields = []
            return
        }
        fields.append(field())
    }
}

struct H2Tuning: Sendable {
    /// The connection's receive window. It is granted back as DATA arrives; it also caps by
    /// how much the receive windows of all streams together may grow past their initial size.
    var connectionWindow: Int
    /// The largest receive window one stream grows to while its reader keeps up.
    var streamWindow: Int
    var sendWatermark: Int
    var maxFrameSize: Int = 128 << 10
    var maxConcurrentStreams: Int = 100_000
    /// Server role: accept extended CONNECT (RFC 8441), as the agent does for upgrades.
    var extendedConnect = true
    /// Every stream starts with this receive window (SETTINGS_INITIAL_WINDOW_SIZE): what a
    /// stream whose reader never reads can hold.
    var initialStreamWindow: Int = 64 << 10
    /// Decoded bytes (names + values + 32 per field, RFC 9113 §6.5.2) and fields of one
    /// header block; beyond either the block is refused while it is still being decoded.
    var maxHeaderListSize: Int = 256 << 10
    var maxHeaderFields: Int = 1000
    /// Server role on the tunnel: the gateway's resets are not an attack (see createSession).
    var trustsPeerResets = false

    init(connectionWindow: Int, streamWindow: Int, sendWatermark: Int, maxFrameSize: Int = 128 << 10,
         maxConcurrentStreams: Int = 100_000, extendedConnect: Bool = true) {
        self.connectionWindow = connectionWindow
        self.streamWindow = streamWindow
        self.sendWatermark = sendWatermark
        self.maxFrameSize = maxFrameSize
        self.maxConcurrentStreams = maxConcurrentStreams
        self.extendedConnect = extendedConnect
        self.initialStreamWindow = min(64 << 10, streamWindow)
    }

    /// What streams may grow their windows by in total: the connection window.
    var windowGrowthBudget: Int { connectionWindow }
}
