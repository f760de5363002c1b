/// A table of at most `capacity` entries that evicts with the CLOCK algorithm (second
/// chance): every read or write marks an entry; when the table is full the hand sweeps the
/// slots, clearing marks, and replaces the first unmarked entry. Recently used clients
/// survive a flood of new ones for at least one sweep, and the table's size is stated up
/// front (STYLE: bounded state), like haproxy's stick tables.
public struct ClockTable<Key: Hashable, Value> {
    struct Slot {
        var key: Key
        var value: Value
        var referenced: Bool
    }

    public let capacity: Int
    private var slots: [Slot?] = []
    private var index: [Key: Int] = [:]
    private var hand = 0
    /// Slots emptied by `remove`, filled before the hand evicts anything.
    private var free: [Int] = []

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    public var count: Int { index.count }

    public subscript(key: Key) -> Value? {
        mutating get {
            guard let i = index[key] else { return nil }
            slots[i]!.referenced = true
            return slots[i]!.value
        }
        set {
            guard let newValue else { return remove(key) }
            if let i = index[key] {
                slots[i] = Slot(key: key, value: newValue, referenced: true)
            } else {
                insert(key, newValue)
            }
        }
    }

    /// Looks at an entry without marking it (for tests and reports).
    public func peek(_ key: Key) -> Value? {
        index[key].flatMap { slots[$0]?.value }
    }

    public mutating func remove(_ key: Key) {
        guard let i = index.removeValue(forKey: key) else { return }
        slots[i] = nil
        free.append(i)
    }

    private mutating func insert(_ key: Key, _ value: Value) {
        let slot = Slot(key: key, value: value, referenced: false)
        if let i = free.popLast() {
            slots[i] = slot
            index[key] = i
        } else if slots.count < capacity {
            index[key] = slots.count
            slots.append(slot)
        } else {
            let i = victim()
            index[slots[i]!.key] = nil
            slots[i] = slot
            index[key] = i
        }
    }

    /// The first unmarked slot from the hand on; at most two turns (the first clears marks).
    private mutating func victim() -> Int {
        while true {
            let i = hand
            hand = (hand + 1) % capacity
            if slots[i]!.referenced {
                slots[i]!.referenced = false
            } else {
                return i
            }
        }
    }
}

extension ClockTable: Sendable where Key: Sendable, Value: Sendable {}
extension ClockTable.Slot: Sendable where Key: Sendable, Value: Sendable {}
