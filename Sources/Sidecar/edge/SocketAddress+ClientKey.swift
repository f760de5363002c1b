import NIOCore
import Protocol

extension SocketAddress {
    /// The per-client limits' key for this peer; nil for a Unix socket.
    var clientKey: ClientKey? {
        switch self {
        case .v4(let a):
            let raw = a.address.sin_addr.s_addr  // network order in memory
            return withUnsafeBytes(of: raw) { ClientKey(addressBytes: Array($0)) }
        case .v6(let a):
            return withUnsafeBytes(of: a.address.sin6_addr) { ClientKey(addressBytes: Array($0)) }
        case .unixDomainSocket:
            return nil
        }
    }
}
