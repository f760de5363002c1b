import CNghttp2
import NIOCore
import Protocol

/// The tunnel-loop half of a `connect-udp` stream, on both sides: UDP payloads from the
/// socket leave as DATAGRAM capsules (RFC 9297), capsules from the stream are decoded and
/// handed to `deliver`. A datagram is never waited for: while the stream's queue is above
/// its watermark the flow's datagrams are dropped and counted (`tunnel_window`), so a slow
/// flow never holds up the socket that other flows share. Received bytes are consumed as
/// soon as they are decoded — UDP has no backpressure; a full socket drops at its end.
final class DatagramStreamLink: TunnelStreamHandler {
    /// Datagrams from the tunnel held until `deliver` is set (the agent's socket is opening).
    static let maxHeld = 64
    /// Partial capsules of all streams of the process together: each stream holds at most
    /// one (`CapsuleDecoder.maxPartial`, 64 KiB), and a stream whose partial capsule would
    /// take the total past 32 MiB is reset (`capsule_memory`) — a peer starting large
    /// capsules on thousands of flows and never finishing them cannot take 4,096 × 64 KiB.
    /// Only the part above `CapsuleDecoder.unchargedPartial` (2 KiB) is charged, so a flow of
    /// usual datagrams split across DATA frames is never reset because another agent's
    /// streams filled the budget (the flow tables bound the uncharged part).
    static let partialCapsules = MemoryBudget(limit: 32 << 20)

    private(set) var connection: TunnelConnection?
    var streamID: Int32 = 0
    private let counters: UDPServiceCounters
    /// Gateway: the socket is the public client's side; agent: the upstream's.
    private let socketIsClient: Bool
    private var decoder = CapsuleDecoder()
    /// What this stream's partial capsule has taken from `partialCapsules`.
    private var charged = 0
    private var tally = CapsuleDecoder.Tally()
    /// The stream's queue went over its watermark: drop until it drains.
    private var blocked = false
    private var over = false
    private var held: [ByteBuffer] = []
    private let allocator = ByteBufferAllocator()
    /// Sends the datagrams one DATA frame carried to the socket, written together and
    /// flushed once; must not block: false when a full socket dropped them.
    var deliver: (([ByteBuffer]) -> Bool)? {
        didSet {
            guard deliver != nil, !held.isEmpty else { return }
            let pending = held
            held = []
            hand(pending)
        }
    }
    /// The peer's HEADERS (the gateway reads the agent's answer).
    var onHeaders: (([HeaderField]) -> Void)?
    /// Once, when the stream is over (`errorCode` 0: a clean end).
    var onClosed: ((UInt32) -> Void)?
    /// Called for every datagram either way: the flow's last activity.
    var onActivity: (() -> Void)?

    init(counters: UDPServiceCounters, socketIsClient: Bool) {
        self.counters = counters
        self.socketIsClient = socketIsClient
    }

    /// The stream was opened (gateway) or accepted (agent) on `connection`.
    func bind(_ connection: TunnelConnection, stream: Int32) {
        self.connection = connection
        self.streamID = stream
    }

    // MARK: from the tunnel

    func received(headers: [HeaderField], endStream: Bool) {
        onHeaders?(headers)
    }

    func received(data: ByteBuffer) {
        connection?.consume(stream: streamID, bytes: data.readableBytes)
        guard !over else { return }
        var batch: [ByteBuffer] = []
        do {
            try data.withUnsafeReadableBytes { raw throws(CapsuleDecoder.Failure) in
                try decoder.feed(raw, tally: &tally) { payload in
                    // A payload inside this frame is a slice of it, not a copy; one the
                    // decoder put together from several frames is copied once.
                    if let base = raw.baseAddress, let start = payload.baseAddress, start >= base,
                       start + payload.count <= base + raw.count,
                       let slice = data.getSlice(at: data.readerIndex + (start - base), length: payload.count) {
                        batch.append(slice)
                    } else {
                        var copy = allocator.buffer(capacity: payload.count)
                        copy.writeBytes(payload)
                        batch.append(copy)
                    }
                }
            }
        } catch {
            counters.drops.add("malformed_capsule")
            abort(code: NGHTTP2_PROTOCOL_ERROR.rawValue)
        }
        if decoder.chargeable != charged {
            let more = decoder.chargeable - charged
            if more > 0, !Self.partialCapsules.take(more) {
                counters.drops.add("capsule_memory")
                abort(code: NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
            } else {
                if more < 0 { Self.partialCapsules.give(-more) }
                charged = decoder.chargeable
            }
        }
        guard !batch.isEmpty else { return }
        onActivity?()
        if deliver != nil {
            hand(batch)
        } else {
            let room = max(Self.maxHeld - held.count, 0)
            held += batch.prefix(room)
            if batch.count > room { counters.drops.add("not_ready", batch.count - room) }
        }
    }

    private func hand(_ datagrams: [ByteBuffer]) {
        guard deliver?(datagrams) == true else { return }
        (socketIsClient ? counters.datagramsOut : counters.datagramsIn).add(datagrams.count)
        (socketIsClient ? counters.bytesOut : counters.bytesIn).add(datagrams.reduce(0) { $0 + $1.readableBytes })
    }

    func remoteEnded() {
        // The far side ended its flow: so does this one.
        if let connection, !over { connection.finish(stream: streamID) }
    }

    func closed(errorCode: UInt32) {
        over = true
        held = []
        Self.partialCapsules.give(charged)
        charged = 0
        decoder = CapsuleDecoder()
        if tally.skippedCapsules + tally.unknownContexts > 0 {
            counters.drops.add("unknown_capsule", tally.skippedCapsules + tally.unknownContexts)
        }
        let report = onClosed
        onClosed = nil
        deliver = nil
        onActivity = nil
        onHeaders = nil
        report?(errorCode)
    }

    func writable() {
        blocked = false
    }

    // MARK: from the socket (on the tunnel loop)

    /// One datagram from the socket, as a DATAGRAM capsule.
    func send(_ payload: ByteBuffer) {
        guard !over, let connection else { return }
        let n = payload.readableBytes
        guard n <= Capsule.maxDatagramPayload else {
            counters.drops.add("too_large")
            return
        }
        guard !blocked else {
            counters.drops.add("tunnel_window")
            return
        }
        var capsule = allocator.buffer(capacity: Capsule.maxDatagramHeader + n)
        capsule.writeWithUnsafeMutableBytes(minimumWritableBytes: Capsule.maxDatagramHeader) { out in
            Capsule.writeDatagramHeader(payloadLength: n, into: out)
        }
        capsule.writeImmutableBuffer(payload)
        counters.counted(toUpstream: socketIsClient, bytes: n)
        if !connection.write(stream: streamID, capsule) { blocked = true }
    }

    /// Ends the flow (idle, or its socket closed): RST_STREAM, so both sides let go at once.
    func abort(code: UInt32 = NGHTTP2_NO_ERROR.rawValue) {
        guard !over, let connection else { return }
        // Nothing more goes either way; `closed` follows and reports.
        over = true
        connection.reset(stream: streamID, code: code)
    }
}
