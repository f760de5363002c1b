/// When to hand freed heap back to the kernel (glibc's `malloc_trim`): after the number of
/// open connections fell a lot since the last trim, e.g. once a flood has left. glibc only
/// returns memory at the top of the heap by itself, so without it the RSS of a flood's peak
/// stays. Trimming walks the heap, so it is not worth doing for small changes.
public struct TrimPolicy: Sendable {
    /// The fall (in connections) that is worth a trim.
    public let minimumDrop: Int
    private var peak = 0

    public init(minimumDrop: Int = 1000) {
        self.minimumDrop = minimumDrop
    }

    /// Called periodically with the open connections; true: trim now.
    public mutating func observe(connections: Int) -> Bool {
        peak = max(peak, connections)
        guard peak - connections >= minimumDrop, connections <= peak / 2 else { return false }
        peak = connections
        return true
    }
}
