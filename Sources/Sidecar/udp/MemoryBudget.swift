import Synchronization

/// A byte budget shared by many streams across event loops.
final class MemoryBudget: Sendable {
    let limit: Int
    private let used = Atomic(0)

    init(limit: Int) {
        self.limit = limit
    }

    var inUse: Int { used.load(ordering: .relaxed) }

    /// Takes `bytes` if they fit under `limit`.
    func take(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while current + bytes <= limit {
            let (done, now) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if done { return true }
            current = now
        }
        return false
    }

    func give(_ bytes: Int) {
        used.subtract(bytes, ordering: .relaxed)
    }
}
