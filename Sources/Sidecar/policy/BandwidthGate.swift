import NIOConcurrencyHelpers
import Protocol

/// One service's bandwidth under one policy: a byte bucket for each direction (client to
/// upstream, upstream to client), shared by all the service's connections and requests
/// that pass the policy, on every event loop. Each lock is held for one bucket update.
final class BandwidthGate: Sendable {
    enum Direction: Sendable {
        /// Client to upstream: request bodies, TCP and upgraded bytes the client sends.
        case upload
        /// Upstream to client.
        case download
    }

    private let up: NIOLockedValueBox<ByteRateLimiter>
    private let down: NIOLockedValueBox<ByteRateLimiter>

    init(rate: Int, now: Double) {
        up = NIOLockedValueBox(ByteRateLimiter(rate: rate, now: now))
        down = NIOLockedValueBox(ByteRateLimiter(rate: rate, now: now))
    }

    func take(_ n: Int, _ direction: Direction, now: Double) -> ByteRateLimiter.Grant {
        bucket(direction).withLockedValue { $0.take(n, now: now) }
    }

    func giveBack(_ n: Int, _ direction: Direction) {
        bucket(direction).withLockedValue { $0.giveBack(n) }
    }

    private func bucket(_ direction: Direction) -> NIOLockedValueBox<ByteRateLimiter> {
        direction == .upload ? up : down
    }
}

/// The gates of one policy that sets `bandwidth`, by service (`PolicyCell.bandwidth`; a
/// reload that keeps the policy keeps them). Services are named by agents, who are only
/// half trusted, so the table is bounded: at most `capacity` services hold a gate of their
/// own, about 400 bytes each plus the service's name (under 1 MiB per policy with names of
/// 500 bytes). When it is full, the gate of a service with no stream open is dropped (its
/// bucket refills within a second anyway); when every gate is in use, further services
/// share one more gate, so the cap still holds, for all of them together.
final class BandwidthGates: Sendable {
    static let capacity = 1024

    let rate: Int
    /// Times a stream had to wait, and the bytes that waited, since the policy was loaded.
    let throttled = Counter()
    let delayedBytes = Counter()
    private let table: NIOLockedValueBox<Table>
    private let overflow: BandwidthGate
    private let capacity: Int
    /// Seconds on the clock of the event loops' `now` (tests: their own).
    private let clock: @Sendable () -> Double

    private struct Entry {
        let gate: BandwidthGate
        var streams: Int
    }

    private struct Table {
        var gates: [String: Entry] = [:]
    }

    init(rate: Int, capacity: Int = BandwidthGates.capacity, clock: @escaping @Sendable () -> Double = { PolicyEnforcer.now }) {
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        overflow = BandwidthGate(rate: rate, now: clock())
        table = NIOLockedValueBox(Table())
    }

    /// The gate of `service`, counted in use until `release(service:)`.
    func acquire(service: String) -> BandwidthGate {
        table.withLockedValue { t in
            if let e = t.gates[service] {
                t.gates[service]!.streams += 1
                return e.gate
            }
            if t.gates.count >= capacity {
                guard let idle = t.gates.first(where: { $0.value.streams == 0 })?.key else { return overflow }
                t.gates[idle] = nil
            }
            let gate = BandwidthGate(rate: rate, now: clock())
            t.gates[service] = Entry(gate: gate, streams: 1)
            return gate
        }
    }

    func release(service: String, gate: BandwidthGate) {
        table.withLockedValue { t in
            guard let e = t.gates[service], e.gate === gate else { return }
            t.gates[service]!.streams = max(0, e.streams - 1)
        }
    }

    /// Services holding a gate of their own.
    var services: Int { table.withLockedValue { $0.gates.count } }
}
