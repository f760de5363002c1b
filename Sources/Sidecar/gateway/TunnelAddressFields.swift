import NIOCore
import Protocol

/// The fields that tell the agent, on every stream a public connection opens, who the client
/// is and which of the gateway's addresses it reached: `fastgw-client` and
/// `fastgw-destination` (`ip:port`, `[ipv6]:port`, `?` when unknown). The agent writes
/// them into PROXY protocol headers and `X-Real-IP`.
enum TunnelAddressFields {
    /// `client`: who the request is from when a trusted proxy's X-Forwarded-For said so
    /// (an address without a port), else the connection's client.
    static func of(_ addresses: ConnectionAddresses, client: String? = nil) -> [HeaderField] {
        [HeaderField("fastgw-client", client ?? addresses.clientDescription),
         HeaderField("fastgw-destination", addresses.destination?.description ?? "?")]
    }
}
