/// The `n` smallest of many keyed values without sorting them all: a max-heap of `n`
/// entries, each new value compared with its largest (O(m log n) for m values, n entries of
/// memory), so evicting 1/64 of a million-flow table does not copy and sort the million.
struct OldestSelection<Key> {
    private let capacity: Int
    private var heap: [(key: Key, age: Double)] = []

    init(capacity: Int) {
        self.capacity = max(capacity, 0)
        heap.reserveCapacity(self.capacity)
    }

    mutating func offer(_ key: Key, _ age: Double) {
        guard capacity > 0 else { return }
        if heap.count < capacity {
            heap.append((key, age))
            siftUp(heap.count - 1)
        } else if age < heap[0].age {
            heap[0] = (key, age)
            siftDown(0)
        }
    }

    /// The kept keys, smallest value first.
    var keys: [Key] { heap.sorted { $0.age < $1.age }.map(\.key) }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].age > heap[parent].age else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            var largest = parent
            for child in [2 * parent + 1, 2 * parent + 2] where child < heap.count && heap[child].age > heap[largest].age {
                largest = child
            }
            guard largest != parent else { return }
            heap.swapAt(parent, largest)
            parent = largest
        }
    }
}
