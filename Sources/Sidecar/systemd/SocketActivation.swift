import CSystemd
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Protocol

#if canImport(Glibc)
import Glibc
#endif

/// The listening sockets the service manager passed (`sd_listen_fds_with_names`, DESIGN §5)
/// and how a listener adopts one instead of binding.
///
/// The inherited descriptors stay open for the life of the process; a listener adopts a
/// duplicate. Closing a listener (drain, reload) therefore never closes the socket systemd
/// holds: connections keep queueing in its backlog for the next process, and a later reload
/// can adopt the same socket again.
final class SocketActivation: Sendable {
    let inherited: [InheritedListener]

    /// With no `LISTEN_FDS` for this process there is nothing inherited and every listener binds.
    static func fromEnvironment() throws -> SocketActivation {
        guard getenv("LISTEN_FDS") != nil else { return SocketActivation(inherited: []) }
        let systemd = try Libsystemd.functions()
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        // unset_environment = 1: the variables are for this process, not for anything it starts.
        let count = systemd.listenFDsWithNames(1, &names)
        guard count >= 0 else {
            throw StartupError("socket activation: cannot read LISTEN_FDS: \(String(cString: strerror(-count)))")
        }
        defer {
            if let names {
                for i in 0..<Int(count) { free(names[i]) }
                free(names)
            }
        }
        var sockets: [InheritedListener] = []
        for i in 0..<Int(count) {
            let fd = SD_LISTEN_FDS_START + Int32(i)
            let name = names?[i].map { String(cString: $0) } ?? "unknown"
            sockets.append(InheritedListener(fd: fd, name: name, address: try listeningAddress(fd: fd, name: name)))
        }
        return SocketActivation(inherited: sockets)
    }

    init(inherited: [InheritedListener]) {
        self.inherited = inherited
    }

    var isActive: Bool { !inherited.isEmpty }

    /// Which inherited socket each of `wanted` adopts. On reload an inherited socket no
    /// listener wants any more is not an error: it stays open for a later reload.
    func plan(_ wanted: [WantedListener]) -> ListenerMatching.Plan {
        ListenerMatching.plan(wanted: wanted, inherited: inherited)
    }

    /// The start-up plan: an inherited socket that matches no listener is an error naming it.
    func startupPlan(_ wanted: [WantedListener]) throws -> ListenerMatching.Plan {
        let plan = plan(wanted)
        if !plan.unmatched.isEmpty {
            let offered = wanted.map { w in "\(w.name) (\(w.addresses.map(\.description).joined(separator: ", ")))" }
            throw StartupError(
                "socket activation: inherited socket \(plan.unmatched.map(\.description).joined(separator: ", ")) "
                    + "matches no listener; set FileDescriptorName= in the .socket unit to one of: "
                    + offered.joined(separator: "; "))
        }
        return plan
    }

    /// Adopts a duplicate of `socket` into a server channel built by `bootstrap`, keeping the
    /// backlog systemd gave it (NIO calls listen(2) again with its own default).
    static func adopt(_ socket: InheritedListener, with bootstrap: ServerBootstrap) throws -> Channel {
        let backlog = listenBacklog(fd: socket.fd)
        let copy = fcntl(socket.fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else {
            throw StartupError("socket activation: cannot duplicate \(socket): \(String(cString: strerror(errno)))")
        }
        let channel: Channel
        do {
            channel = try bootstrap.withBoundSocket(copy).wait()
        } catch {
            close(copy)
            throw StartupError("socket activation: cannot adopt \(socket): \(error)")
        }
        if let backlog { _ = listen(copy, backlog) }
        return channel
    }

    /// Adopts a duplicate of an inherited UDP socket (`ListenDatagram=`) into a datagram channel.
    static func adopt(_ socket: InheritedListener, with bootstrap: DatagramBootstrap) throws -> Channel {
        let copy = fcntl(socket.fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else {
            throw StartupError("socket activation: cannot duplicate \(socket): \(String(cString: strerror(errno)))")
        }
        do {
            return try bootstrap.withBoundSocket(copy).wait()
        } catch {
            close(copy)
            throw StartupError("socket activation: cannot adopt \(socket): \(error)")
        }
    }

    // MARK: addresses

    /// What `wanted` resolves to: the numeric forms of the configured host (`datagram`: as
    /// a UDP socket's, which only a `ListenDatagram=` socket matches).
    static func wanted(name: String, address: HostPort, datagram: Bool = false) -> WantedListener {
        let addresses = resolve(address)
        return WantedListener(name: name, addresses: datagram ? addresses.map(\.asDatagram) : addresses)
    }

    static func wanted(name: String, unixPath: String) -> WantedListener {
        WantedListener(name: name, addresses: [.unix(path: unixPath)])
    }

    private static func resolve(_ address: HostPort) -> [ListenAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address.host, String(address.port), &hints, &list) == 0, let list else {
            return [.inet(host: address.host, port: address.port)]
        }
        defer { freeaddrinfo(list) }
        var out: [ListenAddress] = []
        var next: UnsafeMutablePointer<addrinfo>? = list
        while let info = next {
            if let found = numeric(info.pointee.ai_addr), !out.contains(found) { out.append(found) }
            next = info.pointee.ai_next
        }
        return out
    }

    private static func listeningAddress(fd: Int32, name: String) throws -> ListenAddress {
        var type: Int32 = 0
        var accepting: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) == 0 else {
            throw StartupError("socket activation: fd \(fd) (name \"\(name)\") is not a socket")
        }
        size = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size)
        let datagram = type == Int32(SOCK_DGRAM.rawValue)
        guard datagram || (type == Int32(SOCK_STREAM.rawValue) && accepting != 0) else {
            throw StartupError(
                "socket activation: fd \(fd) (name \"\(name)\") is not a listening stream socket or a datagram socket; "
                    + "use ListenStream= with Accept=no, or ListenDatagram=")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let found = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa -> ListenAddress? in
                guard getsockname(fd, sa, &length) == 0 else { return nil }
                return numeric(sa)
            }
        }
        guard let found else {
            throw StartupError("socket activation: fd \(fd) (name \"\(name)\"): unsupported address family")
        }
        return datagram ? found.asDatagram : found
    }

    private static func numeric(_ sa: UnsafeMutablePointer<sockaddr>?) -> ListenAddress? {
        guard let sa else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(sa.pointee.sa_family) {
        case AF_INET:
            return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                var a = v4.pointee.sin_addr
                inet_ntop(AF_INET, &a, &text, socklen_t(text.count))
                return .inet(host: Self.string(text), port: Int(UInt16(bigEndian: v4.pointee.sin_port)))
            }
        case AF_INET6:
            return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                var a = v6.pointee.sin6_addr
                inet_ntop(AF_INET6, &a, &text, socklen_t(text.count))
                return .inet(host: Self.string(text), port: Int(UInt16(bigEndian: v6.pointee.sin6_port)))
            }
        case AF_UNIX:
            return sa.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { un in
                let path = withUnsafeBytes(of: un.pointee.sun_path) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                return .unix(path: path)
            }
        default:
            return nil
        }
    }

    private static func string(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The backlog of a listening TCP socket (`tcpi_sacked` holds it for LISTEN sockets);
    /// nil for Unix sockets, where Linux does not report it.
    private static func listenBacklog(fd: Int32) -> Int32? {
        var info = tcp_info()
        var size = socklen_t(MemoryLayout<tcp_info>.size)
        guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &size) == 0, info.tcpi_sacked > 0 else { return nil }
        return Int32(clamping: info.tcpi_sacked)
    }
}
