import NIOCore
import Synchronization

/// Datagrams handed from one event loop to another and not yet taken up there, for one UDP
/// port and direction. UDP has no backpressure: without this bound a flood faster than the
/// other loop (the tunnel's TLS and HTTP/2, or the port's socket) would queue tasks without
/// limit. Past `limit` a datagram is dropped and counted, as a full socket buffer would.
final class HopLimit: Sendable {
    static let limit = 4096
    private let count = Atomic(0)

    func take() -> Bool {
        if count.wrappingAdd(1, ordering: .relaxed).newValue <= Self.limit { return true }
        count.wrappingSubtract(1, ordering: .relaxed)
        return false
    }

    func release(_ n: Int = 1) {
        count.wrappingSubtract(n, ordering: .relaxed)
    }

    /// A datagram read into a large receive buffer, copied to its own size before it waits
    /// on another loop (a 1-byte datagram must not hold 64 KiB while queued).
    static func compact(_ bytes: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard bytes.capacity > 2 * bytes.readableBytes + 4096 else { return bytes }
        var copy = allocator.buffer(capacity: bytes.readableBytes)
        copy.writeImmutableBuffer(bytes)
        return copy
    }
}
