/// Where a listening socket listens, in numeric form: what `getsockname` gives for an inherited
/// socket, and what a configured listener resolves to.
public enum ListenAddress: Hashable, Sendable, CustomStringConvertible {
    /// A numeric IPv4 or IPv6 address (no brackets) and a port.
    case inet(host: String, port: Int)
    /// A UDP socket (`ListenDatagram=`): never the same listener as a TCP one on its port.
    case udp(host: String, port: Int)
    case unix(path: String)

    public var description: String {
        switch self {
        case .inet(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .udp(let host, let port): return "udp " + ListenAddress.inet(host: host, port: port).description
        case .unix(let path): return path
        }
    }

    /// The same address as a UDP socket's.
    public var asDatagram: ListenAddress {
        if case .inet(let host, let port) = self { return .udp(host: host, port: port) }
        return self
    }

    /// 0.0.0.0 and :: both mean "every address": systemd's `ListenStream=7443` gives a
    /// dual-stack `[::]:7443`, which serves what `0.0.0.0:7443` in the config asks for.
    var isWildcard: Bool {
        switch self {
        case .inet(let host, _), .udp(let host, _): return host == "0.0.0.0" || host == "::"
        case .unix: return false
        }
    }

    func serves(_ other: ListenAddress) -> Bool {
        if self == other { return true }
        switch (self, other) {
        case (.inet(_, let a), .inet(_, let b)), (.udp(_, let a), .udp(_, let b)): return a == b && isWildcard && other.isWildcard
        default: return false
        }
    }
}

/// A socket the service manager passed (`LISTEN_FDS`), with its `FileDescriptorName=`.
public struct InheritedListener: Hashable, Sendable, CustomStringConvertible {
    public let fd: Int32
    public let name: String
    public let address: ListenAddress

    public init(fd: Int32, name: String, address: ListenAddress) {
        self.fd = fd
        self.name = name
        self.address = address
    }

    public var description: String { "fd \(fd) (name \"\(name)\", \(address))" }
}

/// A listener the configuration asks for: its name and every address its host resolves to.
public struct WantedListener: Hashable, Sendable {
    public let name: String
    public let addresses: [ListenAddress]

    public init(name: String, addresses: [ListenAddress]) {
        self.name = name
        self.addresses = addresses
    }
}

/// Pairs inherited sockets with configured listeners (DESIGN §5): first by
/// `FileDescriptorName=` equal to the listener's name, then by bound address. Each socket
/// serves at most one listener and each listener takes at most one socket.
public enum ListenerMatching {
    public struct Plan: Equatable, Sendable {
        /// Listener name → the inherited socket it adopts.
        public var claims: [String: InheritedListener] = [:]
        /// Inherited sockets no listener asked for.
        public var unmatched: [InheritedListener] = []
    }

    public static func plan(wanted: [WantedListener], inherited: [InheritedListener]) -> Plan {
        var plan = Plan()
        var free = inherited
        for listener in wanted {
            if let i = free.firstIndex(where: { $0.name == listener.name }) {
                plan.claims[listener.name] = free.remove(at: i)
            }
        }
        // A socket named after some listener is that listener's, even if it also has another's address.
        let names = Set(wanted.map(\.name))
        for listener in wanted where plan.claims[listener.name] == nil {
            let match = free.firstIndex { socket in
                !names.contains(socket.name) && listener.addresses.contains { socket.address.serves($0) }
            }
            if let i = match { plan.claims[listener.name] = free.remove(at: i) }
        }
        plan.unmatched = free
        return plan
    }
}
