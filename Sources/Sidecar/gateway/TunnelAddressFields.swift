import NIOCore
import Protocol

/// The fields that tell the agent, on every stream a public connection opens, who the client
/// is and which of the gateway's addresses it reached: `fastgw-client` and
/// `fastgw-destination` (`ip:port`, `[ipv6]:port`, or a Unix socket's path). The agent writes
/// them into PROXY protocol headers and `X-Real-IP`.
enum TunnelAddressFields {
    static func of(_ channel: Channel) -> [HeaderField] {
        of(client: channel.remoteAddress, destination: channel.localAddress)
    }

    static func of(client: SocketAddress?, destination: SocketAddress?) -> [HeaderField] {
        [HeaderField("fastgw-client", client?.fastgwDescription ?? "?"),
         HeaderField("fastgw-destination", destination?.fastgwDescription ?? "?")]
    }
}
