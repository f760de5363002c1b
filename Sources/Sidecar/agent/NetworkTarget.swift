import NIOCore
import NIOPosix
import Protocol

#if canImport(Glibc)
import Glibc
#endif

/// Where a stream to a `type = "network"` service may connect: the destination the visitor
/// named (`fastgw-target`), resolved off the event loop (`BoundedResolver`) and kept only
/// where the service's `allow` covers it — by name as written, else address by address (a name resolving into an
/// allowed block is allowed, one resolving elsewhere is not: DNS cannot widen `allow`).
enum NetworkTarget {
    enum Refusal: Error {
        case malformed(String)
        case notAllowed(String)
        case unresolvable(String)
    }

    static func resolve(_ text: String?, service: AgentConfig.Service, on loop: EventLoop) -> EventLoopFuture<[SocketAddress]> {
        guard let text, case .success(let target) = HostPort.parse(text) else {
            return loop.makeFailedFuture(Refusal.malformed("missing or malformed destination \"\(text ?? "")\" (host:port)"))
        }
        let allow = service.allow
        if let address = IPAddress(target.host) {
            guard allow.permits(address, port: target.port), let socket = try? SocketAddress(ipAddress: target.host, port: target.port) else {
                return loop.makeFailedFuture(Refusal.notAllowed("\(target) is not in service \"\(service.name)\"'s allow list"))
            }
            return loop.makeSucceededFuture([socket])
        }
        guard allow.mayPermit(host: target.host, port: target.port) else {
            return loop.makeFailedFuture(Refusal.notAllowed("\(target) is not in service \"\(service.name)\"'s allow list"))
        }
        let byName = allow.permitsName(target.host, port: target.port)
        return BoundedResolver.shared.resolve(target, on: loop).flatMapThrowing { all in
            let kept = all.filter { a in
                guard let ip = a.ipAddress.flatMap(IPAddress.init) else { return false }
                return byName ? allow.permitsResolved(ip, port: target.port, name: target.host) : allow.permits(ip, port: target.port)
            }
            guard !kept.isEmpty else {
                throw Refusal.notAllowed("\(target) resolves to no address in service \"\(service.name)\"'s allow list")
            }
            return kept
        }
    }

    /// getaddrinfo, blocking: run on `BoundedResolver`'s threads.
    static func lookup(_ target: HostPort) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard rc == 0, let list else {
            throw Refusal.unresolvable("cannot resolve \(target.host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var out: [SocketAddress] = []
        var p: UnsafeMutablePointer<addrinfo>? = list
        while let info = p {
            if let sa = info.pointee.ai_addr {
                switch Int32(sa.pointee.sa_family) {
                case AF_INET:
                    out.append(sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: target.host) })
                case AF_INET6:
                    out.append(sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: target.host) })
                default: break
                }
            }
            p = info.pointee.ai_next
        }
        return out
    }
}
