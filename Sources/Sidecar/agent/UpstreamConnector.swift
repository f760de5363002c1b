import NIOCore
import NIOPosix
import Protocol

/// Opens a connection to a service's upstream (`host:port` or `unix:/path`) on `loop`, with
/// the service's connect timeout and `handler` as the pipeline's only handler.
enum UpstreamConnector {
    /// `preamble`: bytes written first, before anything the handler writes (a PROXY
    /// protocol header): the future completes only after they are queued. `address`: where
    /// to connect instead of the service's upstream (a network service's checked destination).
    static func connect<Handler: ChannelHandler>(
        _ service: AgentConfig.Service, on loop: EventLoop, handler: NIOLoopBound<Handler>, allowHalfClosure: Bool,
        preamble: [UInt8]? = nil, address: SocketAddress? = nil
    ) -> EventLoopFuture<Channel> {
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(TimeAmount(service.connectTimeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: allowHalfClosure)
            .channelOption(.recvAllocator, value: SocketTuning.recvAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
        let connecting: EventLoopFuture<Channel>
        switch service.upstream {
        case _ where address != nil: connecting = bootstrap.connect(to: address!)
        case .tcp(let hp): connecting = bootstrap.connect(host: hp.host, port: hp.port)
        case .unix(let path): connecting = bootstrap.connect(unixDomainSocketPath: path)
        }
        guard let preamble else { return connecting }
        return connecting.map { channel in
            channel.writeAndFlush(channel.allocator.buffer(bytes: preamble), promise: nil)
            return channel
        }
    }

    /// The PROXY protocol header a service wants on a new upstream connection for the public
    /// connection a stream's fields describe; nil when the service sends none.
    static func proxyHeader(_ service: AgentConfig.Service, fields: [HeaderField]) -> [UInt8]? {
        guard let version = service.proxyProtocol else { return nil }
        return ProxyHeaderEncoder.encode(ProxyHeaderEncoder.header(
            version: version, client: fields["fastgw-client"], destination: fields["fastgw-destination"]))
    }
}
