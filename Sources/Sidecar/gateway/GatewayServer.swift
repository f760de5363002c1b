import Logging
import NIOCore
import NIOPosix
import Protocol

/// Binds the gateway's listeners — the tunnel listener agents dial and one public port per
/// TCP service — and serves until told to stop.
final class GatewayServer: Sendable {
    let config: GatewayConfig
    let context: GatewayContext
    let group: MultiThreadedEventLoopGroup
    let tls: TLSContext

    init(config: GatewayConfig, logger: Logger, group: MultiThreadedEventLoopGroup) throws {
        self.config = config
        self.context = GatewayContext(config: config, logger: logger)
        self.group = group
        self.tls = try TLSContext.server(
            certificateChain: config.tunnel.cert, privateKey: config.tunnel.key, alpn: ["http/1.1"])
    }

    /// Binds everything; a port that cannot be bound is a start-up error naming the listener.
    func start() throws -> [Channel] {
        var channels: [Channel] = []
        do {
            channels.append(try bindTunnel())
            for (name, listen) in config.tcpPorts {
                channels.append(try bindTCP(name: name, listen: listen))
            }
        } catch {
            channels.forEach { $0.close(promise: nil) }
            throw error
        }
        return channels
    }

    private func bindTunnel() throws -> Channel {
        let context = self.context
        let tls = self.tls
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: SocketTuning.tunnelWaterMark)
            .childChannelOption(.recvAllocator, value: SocketTuning.recvAllocator)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(TLSHandler(context: tls, role: .server))
                    try sync.addHandler(TunnelAcceptHandler(gateway: context))
                }
            }
        return try bind(bootstrap, config.tunnel.listen, what: "tunnel listener")
    }

    private func bindTCP(name: String, listen: HostPort) throws -> Channel {
        let context = self.context
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.recvAllocator, value: SocketTuning.recvAllocator)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let bridge = StreamSocketBridge(link: nil)
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(TCPIngress(gateway: context, port: listen.port, listener: name, bridge: bridge))
                    try sync.addHandler(bridge)
                }
            }
        return try bind(bootstrap, listen, what: "listener \"\(name)\"")
    }

    private func bind(_ bootstrap: ServerBootstrap, _ listen: HostPort, what: String) throws -> Channel {
        do {
            let channel = try bootstrap.bind(host: listen.host, port: listen.port).wait()
            context.logger.info("listening", metadata: ["listener": "\(what)", "address": "\(listen)"])
            return channel
        } catch {
            throw StartupError("\(what): cannot listen on \(listen): \(error)")
        }
    }
}

struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
