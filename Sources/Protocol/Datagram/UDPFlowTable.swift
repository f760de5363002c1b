/// The flows of one UDP listener (I/O-free): one per client address (ip:port), bounded in
/// total and per client (`ClientKey`: IPv4 /32, IPv6 /64), expired after a stated idle time.
/// A datagram from a client with no flow asks `admission` first. A client over its own cap
/// is refused; a full table makes room (`makeRoom`) by ending the least recently active
/// flows, so a flood of spoofed source addresses churns the table instead of locking real
/// clients out for `idleTimeout`. Client addresses whose flow was refused (by the agent or
/// a policy) are remembered for `refusalMemory` in a table of `maxFlows` addresses (made
/// anew, forgetting them, when a reload changes `maxFlows`), so a refused client does not
/// cost a stream per datagram.
public struct UDPFlowTable<Key: Hashable, Flow> {
    public struct Limits: Equatable, Sendable {
        public var maxFlows: Int
        public var maxFlowsPerClient: Int
        /// Seconds without a datagram either way after which a flow ends.
        public var idleTimeout: Double

        /// Seconds a refused client address is answered by dropping, without a new stream.
        public var refusalMemory: Double

        public init(maxFlows: Int, maxFlowsPerClient: Int, idleTimeout: Double, refusalMemory: Double = 5) {
            self.maxFlows = maxFlows
            self.maxFlowsPerClient = maxFlowsPerClient
            self.idleTimeout = idleTimeout
            self.refusalMemory = refusalMemory
        }
    }

    public enum Refusal: String, Equatable, Sendable {
        case flowLimit = "flow_limit"
        case clientFlowLimit = "client_flow_limit"
    }

    private struct Entry {
        let flow: Flow
        let client: ClientKey
    }

    public var limits: Limits {
        didSet {
            if limits.maxFlows != oldValue.maxFlows { refused = ClockTable(capacity: max(limits.maxFlows, 1)) }
        }
    }
    private var flows: [Key: Entry] = [:]
    private var perClient: [ClientKey: Int] = [:]
    /// Refused client addresses and until when (seconds); CLOCK-evicted when full.
    private var refused: ClockTable<Key, Double>

    public init(limits: Limits) {
        self.limits = limits
        refused = ClockTable(capacity: max(limits.maxFlows, 1))
    }

    /// Client addresses remembered as refused (expired ones included until reused).
    public var refusedCount: Int { refused.count }

    public var count: Int { flows.count }
    public var clients: Int { perClient.count }

    public subscript(key: Key) -> Flow? { flows[key]?.flow }

    /// Whether a new flow from `client` fits; nil when it does. `.flowLimit` means the
    /// table is full: `makeRoom` ends flows to make space.
    public func admission(client: ClientKey) -> Refusal? {
        if perClient[client, default: 0] >= limits.maxFlowsPerClient { return .clientFlowLimit }
        if flows.count >= limits.maxFlows { return .flowLimit }
        return nil
    }

    /// Removes and returns the least recently active flows (by `lastActive`, seconds) when
    /// the table is full: 1/64 of the table at a time (at least one), so the scan (a bounded
    /// heap, `OldestSelection`: no copy or sort of the table) is paid once per 64 new flows
    /// during a flood rather than per datagram.
    public mutating func makeRoom(lastActive: (Flow) -> Double) -> [Flow] {
        guard flows.count >= limits.maxFlows, !flows.isEmpty else { return [] }
        let n = max(1, limits.maxFlows / 64, flows.count - limits.maxFlows + 1)
        var oldest = OldestSelection<Key>(capacity: n)
        for (key, entry) in flows { oldest.offer(key, lastActive(entry.flow)) }
        return oldest.keys.compactMap { remove($0) }
    }

    /// The capacity of the refused-address memory (follows `limits.maxFlows`).
    public var refusedCapacity: Int { refused.capacity }

    /// Remembers that `key`'s flow was refused at `now`: its datagrams are dropped until
    /// `refusalMemory` has passed.
    public mutating func rememberRefusal(_ key: Key, now: Double) {
        refused[key] = now + limits.refusalMemory
    }

    /// Whether `key` was refused less than `refusalMemory` ago.
    public mutating func isRefused(_ key: Key, now: Double) -> Bool {
        guard let until = refused.peek(key) else { return false }
        if until > now { return true }
        refused.remove(key)
        return false
    }

    /// Adds a flow `admission` allowed (replacing none: the key must be new).
    public mutating func insert(_ flow: Flow, key: Key, client: ClientKey) {
        precondition(flows[key] == nil, "flow already present")
        flows[key] = Entry(flow: flow, client: client)
        perClient[client, default: 0] += 1
    }

    @discardableResult
    public mutating func remove(_ key: Key) -> Flow? {
        guard let entry = flows.removeValue(forKey: key) else { return nil }
        let n = perClient[entry.client, default: 1] - 1
        perClient[entry.client] = n > 0 ? n : nil
        return entry.flow
    }

    /// Removes and returns the flows whose last activity (`lastActive`, seconds) is at least
    /// `idleTimeout` before `now`, and those `done` says are over.
    public mutating func expire(now: Double, lastActive: (Flow) -> Double, done: (Flow) -> Bool = { _ in false }) -> [Flow] {
        let stale = flows.filter { _, e in now - lastActive(e.flow) >= limits.idleTimeout || done(e.flow) }
        return stale.keys.compactMap { remove($0) }
    }

    /// Every flow, removed (the listener closes).
    public mutating func removeAll() -> [Flow] {
        defer {
            flows = [:]
            perClient = [:]
        }
        return flows.values.map(\.flow)
    }
}
