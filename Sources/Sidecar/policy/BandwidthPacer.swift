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
    /// The bytes in `held`, asked for at once so one timer covers several small reads.
    private var heldBytes = 0
    /// Bytes at the head of `held` already paid for in the gates (never more than `heldBytes`).
    private var paid = 0
    /// Set while paid bytes wait for their time.
    private var timer: Scheduled<Void>?
    private var stopped = false
    /// Where bytes go once they may.
    var sink: (ByteBuffer) -> Void = { _ in }
    /// Bytes are waiting (called on each `send` that leaves some held): pause the source.
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
        let wasHolding = isHolding
        held.append(.bytes(bytes))
        heldBytes += bytes.readableBytes
        if !wasHolding { pump() }
        guard isHolding else { return }
        if !wasHolding {
            for table in caps.tables { table.throttled.add() }
        }
        // Every time: the owner may have resumed its source for reasons of its own.
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
        heldBytes = 0
        paid = 0
        timer?.cancel()
        timer = nil
    }

    /// Passes on what is held, in order, as far as the gates allow now; then waits for the
    /// bytes they reserved.
    private func pump() {
        while !stopped, let first = held.first {
            switch first {
            case .event(let event):
                held.removeFirst()
                event()
            case .bytes(var bytes):
                if paid == 0 {
                    let grant = take(heldBytes)
                    paid = grant.bytes
                    if grant.after > 0 {
                        for table in caps.tables { table.delayedBytes.add(grant.bytes) }
                        return schedule(grant.after)
                    }
                }
                let n = min(paid, bytes.readableBytes)
                paid -= n
                heldBytes -= n
                if n == bytes.readableBytes {
                    held.removeFirst()
                    sink(bytes)
                } else {
                    let slice = bytes.readSlice(length: n)!
                    held[held.startIndex] = .bytes(bytes)
                    sink(slice)
                }
            }
        }
    }

    private func schedule(_ wait: Double) {
        let delay = TimeAmount.nanoseconds(Int64((wait * 1e9).rounded(.up)))
        // Held strongly until it fires: held bytes of a socket that closed cleanly still go out.
        timer = loop.assumeIsolated().scheduleTask(in: delay) {
            self.timer = nil
            self.pump()
            if !self.stopped && self.held.isEmpty { self.onRelease?() }
        }
    }

    /// What every gate allows: the fewest bytes, at the latest time; the others get their
    /// surplus back.
    private func take(_ n: Int) -> ByteRateLimiter.Grant {
        let now = Double(loop.now.uptimeNanoseconds) / 1e9
        if gates.count == 1 { return gates[0].take(n, direction, now: now) }
        var grant = ByteRateLimiter.Grant(bytes: n, after: 0)
        var taken: [Int] = []
        for gate in gates {
            let g = gate.take(grant.bytes, direction, now: now)
            taken.append(g.bytes)
            grant = .init(bytes: g.bytes, after: max(grant.after, g.after))
        }
        for (gate, t) in zip(gates, taken) where t > grant.bytes { gate.giveBack(t - grant.bytes, direction) }
        return grant
    }
}
