/// Open connections of one pool (public listeners, or the tunnel listener), counted in
/// total and per client, with the decision to admit a new one (DESIGN §9). Not thread-safe:
/// the owner serialises calls. The per-client table holds only clients with an open
/// connection, so it never has more entries than the pool has connections.
public struct ConnectionAdmission: Sendable {
    public struct Limits: Equatable, Sendable {
        public var total: Int
        public var perClient: Int

        public init(total: Int, perClient: Int) {
            self.total = total
            self.perClient = perClient
        }
    }

    public enum Decision: String, Equatable, Sendable {
        case admitted
        /// The pool is full.
        case refusedTotal = "limit_total"
        /// This client has its share.
        case refusedPerClient = "limit_per_client"
    }

    public private(set) var open = 0
    private var perClient: [ClientKey: Int32] = [:]

    public init() {}

    /// Clients with at least one open connection.
    public var clients: Int { perClient.count }

    public func openConnections(of key: ClientKey) -> Int { Int(perClient[key] ?? 0) }

    /// Counts the connection if the limits allow it; a refused one is not counted.
    public mutating func admit(_ key: ClientKey, limits: Limits) -> Decision {
        if open >= limits.total { return .refusedTotal }
        let mine = perClient[key] ?? 0
        if Int(mine) >= limits.perClient { return .refusedPerClient }
        perClient[key] = mine + 1
        open += 1
        return .admitted
    }

    /// An admitted connection closed.
    public mutating func release(_ key: ClientKey) {
        guard let mine = perClient[key] else { return }
        perClient[key] = mine > 1 ? mine - 1 : nil
        open -= 1
    }
}
