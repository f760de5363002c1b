import NIOCore

enum SocketTuning {
    /// Reads grow up to 256 KiB under load (fewer syscalls and bigger TLS batches) and shrink
    /// back for idle or chatty connections. They start at 2 KiB: NIO keeps a channel's last
    /// receive buffer for the next read, so the initial size is what every idle or stalled
    /// connection holds (16 KiB was most of an idle connection's and a stalled handshake's
    /// cost), and one full read grows it sixteenfold.
    static var recvAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 2 * 1024, maximum: 256 * 1024)
    }

    /// Tunnel connections carry many streams; let them queue more before reporting unwritable.
    static let tunnelWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 512 << 10, high: 2 << 20)

    /// A tunnel connection on either side (the agent dials, the gateway accepts): Nagle off,
    /// the deeper write queue, big reads, and more of them per wake-up. Called from the
    /// channel initializer, on the channel's loop.
    static func tuneTunnel(_ channel: Channel) throws {
        guard let options = channel.syncOptions else { return }
        try options.setOption(.tcpOption(.tcp_nodelay), value: 1)
        try options.setOption(.writeBufferWaterMark, value: tunnelWaterMark)
        try options.setOption(.recvAllocator, value: recvAllocator)
        try options.setOption(.maxMessagesPerRead, value: 16)
    }
}
