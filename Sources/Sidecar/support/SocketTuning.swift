import NIOCore

enum SocketTuning {
    /// Reads grow up to 256 KiB under load (fewer syscalls and bigger TLS batches) and shrink
    /// back for idle or chatty connections.
    static var recvAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 * 1024, maximum: 256 * 1024)
    }

    /// Tunnel connections carry many streams; let them queue more before reporting unwritable.
    static let tunnelWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 512 << 10, high: 2 << 20)
}
