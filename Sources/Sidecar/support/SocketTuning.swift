import NIOCore

enum SocketTuning {
    /// Public and upstream sockets: reads grow up to 256 KiB under load (fewer syscalls and
    /// bigger TLS batches; two full reads get there from the start) and shrink back for idle
    /// or chatty connections. NIO keeps each channel's last receive buffer for its next read,
    /// so the initial size is what every open connection holds while idle: 2 KiB, not 16.
    static var recvAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 512, initial: 2 * 1024, maximum: 256 * 1024)
    }

    /// Tunnel connections are few and busy: they start with large reads.
    static var tunnelRecvAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 * 1024, maximum: 256 * 1024)
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
        try options.setOption(.recvAllocator, value: tunnelRecvAllocator)
        try options.setOption(.maxMessagesPerRead, value: 16)
    }
}
