import NIOCore
import Protocol

/// The bandwidth policies a stream (a TCP connection, an HTTP request) passes, resolved
/// when it is routed: one `BandwidthGates` per policy with `bandwidth`, and its service.
struct BandwidthCaps: Sendable {
    let tables: [BandwidthGates]
    let service: String

    func pacer(_ direction: BandwidthGate.Direction, on loop: EventLoop) -> BandwidthPacer {
        BandwidthPacer(caps: self, direction: direction, loop: loop)
    }
}

/// Paces one direction of one stream through its gates, on the stream's event loop. Bytes
/// are never dropped: what may not pass yet is held, in order, with the events that follow
/// it (an end, trailers), and a timer on the loop passes it on when the gates allow. The
/// owner keeps the holding bounded by not asking for more while `isHolding`: uploads pause
/// the client socket's reads (`onHold`/`onRelease`); downloads need nothing more, since
/// held bytes are not yet consumed, so the tunnel stream's window stops the agent reading
/// its upstream, and other streams of that tunnel connection go on.
final class BandwidthPacer {
    private enum Item {
        case bytes(ByteBuffer)
        case event(() -> Void)
    }

    private let caps: BandwidthCaps
    private let gates: [BandwidthGate]
    private let direction: BandwidthGate.Direction
    private let loop: EventLoop
    private var held = CircularBuffer<Item>()
    private var timer: Scheduled<Void>?
    private var stopped = false
    /// Where bytes go once they may.
    var sink: (ByteBuffer) -> Void = { _ in }
    /// Bytes started waiting: pause the source.
    var onHold: (() -> Void)?
    /// Everything held went out: the source may go on.
    var onRelease: (() -> Void)?

    init(caps: BandwidthCaps, direction: BandwidthGate.Direction, loop: EventLoop) {
        self.caps = caps
        self.direction = direction
        self.loop = loop
        gates = caps.tables.map { $0.acquire(service: caps.service) }
    }

    deinit {
        timer?.cancel()
        for (table, gate) in zip(caps.tables, gates) { table.release(service: caps.service, gate: gate) }
    }

    var isHolding: Bool { !held.isEmpty }

    func send(_ bytes: ByteBuffer) {
        guard !stopped else { return }
        guard held.isEmpty else {
            hold(bytes)
            return
        }
        var bytes = bytes
        let grant = take(bytes.readableBytes)
        if grant.bytes == bytes.readableBytes { return sink(bytes) }
        if grant.bytes > 0 { sink(bytes.readSlice(length: grant.bytes)!) }
        for table in caps.tables { table.throttled.add() }
        hold(bytes)
        schedule(grant.wait)
        onHold?()
    }

    /// Runs `event` after the bytes held now (at once when none are).
    func after(_ event: @escaping () -> Void) {
        if held.isEmpty || stopped { event() } else { held.append(.event(event)) }
    }

    /// The stream is aborted: what is held is dropped and the events after it too.
    func stop() {
        stopped = true
        held.removeAll()
        timer?.cancel()
        timer = nil
    }

    private func hold(_ bytes: ByteBuffer) {
        for table in caps.tables { table.delayedBytes.add(bytes.readableBytes) }
        held.append(.bytes(bytes))
    }

    private func schedule(_ wait: Double) {
        let delay = TimeAmount.nanoseconds(Int64(max(wait, 0.001) * 1e9))
        timer = loop.assumeIsolated().scheduleTask(in: delay) { [weak self] in self?.drain() }
    }

    /// The timer fired: pass on what the gates allow now, in order.
    private func drain() {
        timer = nil
        while !stopped, let first = held.first {
            switch first {
            case .event(let event):
                held.removeFirst()
                event()
            case .bytes(var bytes):
                let grant = take(bytes.readableBytes)
                if grant.bytes == bytes.readableBytes {
                    held.removeFirst()
                    sink(bytes)
                    continue
                }
                if grant.bytes > 0 {
                    let slice = bytes.readSlice(length: grant.bytes)!
                    held[held.startIndex] = .bytes(bytes)
                    sink(slice)
                }
                return schedule(grant.wait)
            }
        }
        if !stopped { onRelease?() }
    }

    /// What every gate allows: a later gate that allows fewer bytes gets the earlier ones'
    /// surplus back.
    private func take(_ n: Int) -> ByteRateLimiter.Grant {
        let now = PolicyEnforcer.now
        if gates.count == 1 { return gates[0].take(n, direction, now: now) }
        var grant = ByteRateLimiter.Grant(bytes: n, wait: 0)
        var taken: [Int] = []
        for gate in gates {
            let g = gate.take(grant.bytes, direction, now: now)
            taken.append(g.bytes)
            grant = .init(bytes: g.bytes, wait: max(grant.wait, g.wait))
        }
        for (gate, t) in zip(gates, taken) where t > grant.bytes { gate.giveBack(t - grant.bytes, direction) }
        return grant
    }
}
