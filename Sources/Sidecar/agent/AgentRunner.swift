import Logging
import NIOCore
import NIOPosix
import Protocol

/// Starts one dialer per gateway and connection slot, spread over the event loops.
final class AgentRunner: Sendable {
    let context: AgentContext
    let group: MultiThreadedEventLoopGroup
    let tls: TLSContext

    init(config: AgentConfig, logger: Logger, group: MultiThreadedEventLoopGroup) throws {
        self.context = AgentContext(config: config, logger: logger)
        self.group = group
        self.tls = try TLSContext.client(
            caFile: config.ca, certificateChain: config.clientCert, privateKey: config.clientKey, alpn: ["http/1.1"])
    }

    func start() {
        for gateway in context.config.gateways {
            for slot in 0..<context.config.connections {
                let loop = group.next()
                let context = self.context
                let tls = self.tls
                loop.execute {
                    GatewayDialer(agent: context, gateway: gateway, slot: slot, loop: loop, tls: tls).start()
                }
            }
        }
    }
}
