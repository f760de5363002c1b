/// Where a visitor's SOCKS5 destination goes (docs/configuration.md, "socks5"): a name ending
/// in `.fastgw`, or a single label, is a private service (its port is not used); any other
/// name or address is asked of the `socks5_network` service, whose agent checks it against
/// its `allow` list — without one it is refused here.
public enum VisitorDestination: Equatable, Sendable {
    case service(String)
    /// A `type = "network"` service and the `host:port` it should connect.
    case network(service: String, target: String)
    case refused(Socks5Server.Reply, reason: String)

    public static let suffix = ".fastgw"

    public static func decide(_ request: Socks5Server.Request, network: String?) -> VisitorDestination {
        if request.isDomain {
            var name = request.host.lowercased()
            if name.hasSuffix(".") { name.removeLast() }
            if name.hasSuffix(suffix) {
                let service = String(name.dropLast(suffix.count))
                guard Names.isValid(service) else { return .refused(.hostUnreachable, reason: "\"\(service)\" is not a service name") }
                return .service(service)
            }
            if !name.contains("."), Names.isValid(name) { return .service(name) }
            guard NetworkAllow.normalizedName(name, wildcard: false) != nil else {
                return .refused(.hostUnreachable, reason: "\"\(request.host)\" is not a host name")
            }
        }
        guard let network else {
            return .refused(.notAllowed, reason: "\(request.host) is not a service, and no socks5_network is configured for addresses")
        }
        let host = request.host.contains(":") ? "[\(request.host)]" : request.host
        return .network(service: network, target: "\(host):\(request.port)")
    }
}
