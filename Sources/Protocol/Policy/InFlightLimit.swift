/// Caps on work in flight (password checks, forward-auth subrequests): at most `total` at
/// once, and at most `perKey` for one client, so one client cannot take every slot and turn
/// its flood into everyone's 503. The table holds only keys with work in flight, so it is
/// bounded by `total`. Not thread-safe: the owner serialises calls.
public struct InFlightLimit<Key: Hashable & Sendable>: Sendable {
    public enum Refusal: Equatable, Sendable {
        case total
        case perKey
    }

    public let total: Int
    public let perKey: Int
    public private(set) var inFlight = 0
    private var byKey: [Key: Int] = [:]

    public init(total: Int, perKey: Int) {
        precondition(total > 0 && perKey > 0)
        self.total = total
        self.perKey = perKey
    }

    /// Takes a slot for `key` (nil: counted in the total only), or says which cap is reached.
    public mutating func take(_ key: Key?) -> Refusal? {
        guard inFlight < total else { return .total }
        if let key {
            let n = byKey[key, default: 0]
            guard n < perKey else { return .perKey }
            byKey[key] = n + 1
        }
        inFlight += 1
        return nil
    }

    /// Gives back a slot `take(key)` granted.
    public mutating func release(_ key: Key?) {
        precondition(inFlight > 0)
        inFlight -= 1
        guard let key, let n = byKey[key] else { return }
        byKey[key] = n > 1 ? n - 1 : nil
    }

    /// Keys holding at least one slot.
    public var keys: Int { byKey.count }
}
