import NIOCore
import Protocol

/// Who a public connection is from and which address it reached: the socket's own
/// addresses, or, on a listener with `proxy_protocol`, what the trusted balancer's PROXY
/// header said. Every handler that names, routes or logs the client asks `Channel.public
/// Addresses` instead of reading `remoteAddress`, so both cases look the same downstream.
struct ConnectionAddresses: Sendable {
    /// The client: the PROXY header's source, else the socket peer.
    let client: IPEndpoint?
    /// The address the client connected to: the PROXY header's destination, else the socket's.
    let destination: IPEndpoint?
    /// The socket peer (the balancer, when a PROXY header was read).
    let peer: IPEndpoint?
    /// False when a PROXY header was read but named no client (v1 UNKNOWN, v2 LOCAL, v2
    /// PROXY without IP addresses): `client` is then the balancer for logs, but whatever
    /// the connection carries came from someone unnamed, so it earns no trust
    /// (`ForwardedFields.Hop(client:named:trustedProxies:)`).
    let clientNamed: Bool

    init(channel: Channel, header: ProxyHeader.Addresses? = nil) {
        peer = channel.remoteAddress?.ipEndpoint
        switch header {
        case .proxied(let source, let destination)?:
            client = IPEndpoint(address: source.address.unmapped, port: source.port)
            self.destination = IPEndpoint(address: destination.address.unmapped, port: destination.port)
            clientNamed = true
        case .local?, .unknown?, nil:
            client = peer
            destination = channel.localAddress?.ipEndpoint
            clientNamed = header == nil
        }
    }

    /// `ip:port` (IPv6 in brackets), `?` when unknown: the `client` of logs and `fastgw-client`.
    var clientDescription: String { client?.description ?? "?" }
}

extension Channel {
    /// The connection's client and destination (`ConnectionAddresses`). On the channel's
    /// event loop only; before a PROXY header is read it is the socket's.
    var publicAddresses: ConnectionAddresses {
        if let proxy = try? pipeline.syncOperations.handler(type: ProxyHeaderHandler.self), let addresses = proxy.addresses {
            return addresses
        }
        return ConnectionAddresses(channel: self)
    }
}
