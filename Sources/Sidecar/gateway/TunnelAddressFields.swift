import NIOCore
import Protocol

/// The fields that tell the agent, on every stream a public connection opens, who the client
/// is and which of the gateway's addresses it reached: `fastgw-client` and
/// `fastgw-destination` (`ip:port`, `[ipv6]:port`, `?` when unknown). The agent writes
/// them into PROXY protocol headers and `X-Real-IP`.
enum TunnelAddressFields {
    /// Made once per public connection.
    static func of(_ addresses: ConnectionAddresses) -> [HeaderField] {
        [HeaderField("fastgw-client", addresses.clientDescription),
         HeaderField("fastgw-destination", addresses.destination?.description ?? "?")]
    }

    /// `fields` (made by `of`) naming `client` instead: who a trusted proxy's
    /// X-Forwarded-For says the request is from (an address without a port).
    static func replacingClient(_ fields: [HeaderField], with client: String) -> [HeaderField] {
        [HeaderField("fastgw-client", client)] + fields.dropFirst()
    }
}
