/// The flows of one UDP listener (I/O-free): one per client address (ip:port), bounded in
/// total and per client (`ClientKey`: IPv4 /32, IPv6 /64), expired after a stated idle time.
/// A datagram from a client with no flow asks `admission` first; a refusal drops the
/// datagram, so neither a port scan nor one client can grow the table past its limits.
public struct UDPFlowTable<Key: Hashable, Flow> {
    public struct Limits: Equatable, Sendable {
        public var maxFlows: Int
        public var maxFlowsPerClient: Int
        /// Seconds without a datagram either way after which a flow ends.
        public var idleTimeout: Double

        public init(maxFlows: Int, maxFlowsPerClient: Int, idleTimeout: Double) {
            self.maxFlows = maxFlows
            self.maxFlowsPerClient = maxFlowsPerClient
            self.idleTimeout = idleTimeout
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

    public var limits: Limits
    private var flows: [Key: Entry] = [:]
    private var perClient: [ClientKey: Int] = [:]

    public init(limits: Limits) {
        self.limits = limits
    }

    public var count: Int { flows.count }
    public var clients: Int { perClient.count }

    public subscript(key: Key) -> Flow? { flows[key]?.flow }

    /// Whether a new flow from `client` fits; nil when it does.
    public func admission(client: ClientKey) -> Refusal? {
        if flows.count >= limits.maxFlows { return .flowLimit }
        if perClient[client, default: 0] >= limits.maxFlowsPerClient { return .clientFlowLimit }
        return nil
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
