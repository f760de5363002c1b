import NIOCore
import NIOPosix
import Protocol

/// Opens a connection to a service's upstream (`host:port` or `unix:/path`) on `loop`, with
/// the service's connect timeout and `handler` as the pipeline's only handler.
enum UpstreamConnector {
    static func connect<Handler: ChannelHandler>(
        _ service: AgentConfig.Service, on loop: EventLoop, handler: NIOLoopBound<Handler>, allowHalfClosure: Bool
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
        switch service.upstream {
        case .tcp(let hp): return bootstrap.connect(host: hp.host, port: hp.port)
        case .unix(let path): return bootstrap.connect(unixDomainSocketPath: path)
        }
    }
}
