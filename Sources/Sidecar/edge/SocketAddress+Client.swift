import NIOCore
import Protocol

extension SocketAddress {
    /// The address and port, IPv4-mapped IPv6 as IPv4; nil for a Unix socket.
    var ipEndpoint: IPEndpoint? {
        let bytes: [UInt8]
        switch self {
        case .v4(let a): bytes = withUnsafeBytes(of: a.address.sin_addr.s_addr) { Array($0) }
        case .v6(let a): bytes = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
        case .unixDomainSocket: return nil
        }
        guard let address = IPAddress(bytes: bytes), let port else { return nil }
        return IPEndpoint(address: address.unmapped, port: UInt16(port))
    }

    /// The per-client limits' key for this peer; nil for a Unix socket.
    var clientKey: ClientKey? { ipEndpoint.map { ClientKey($0.address) } }
}
