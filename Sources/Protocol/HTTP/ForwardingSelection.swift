/// Which fields naming the client an http service's upstream receives (`[[service]]
/// forwarded_headers`): the gateway writes `Forwarded` and `X-Forwarded-*` on every request
/// stream, and the agent drops the families the service did not ask for, or adds
/// `X-Real-IP` from the stream's `fastgw-client`.
public struct ForwardingSelection: Equatable, Sendable {
    public enum Family: String, CaseIterable, Sendable {
        /// RFC 7239 `Forwarded`.
        case forwarded
        /// `X-Forwarded-For`, `-Proto`, `-Host` and any other `X-Forwarded-*`.
        case xForwarded = "x-forwarded"
        /// `X-Real-IP: <client address>`, written by the agent.
        case xRealIP = "x-real-ip"
    }

    public var families: Set<Family>

    public init(_ families: Set<Family>) {
        self.families = families
    }

    /// What the gateway sends, passed on as it is.
    public static let `default` = ForwardingSelection([.forwarded, .xForwarded])

    /// The request stream's fields as the upstream gets them. An `X-Real-IP` the fields
    /// carry is never passed on: the agent writes its own, from `fastgw-client` (without the
    /// port), or none when that is missing or not an IP endpoint.
    public func apply(to fields: [HeaderField]) -> [HeaderField] {
        // The default passes the gateway's fields on as they are: no copy.
        if self == .default && !fields.contains(where: { $0.name == "x-real-ip" }) { return fields }
        let keepForwarded = families.contains(.forwarded)
        let keepX = families.contains(.xForwarded)
        var out = fields.filter { f in
            if f.name == "x-real-ip" { return false }
            if f.name == "forwarded" { return keepForwarded }
            if f.name.hasPrefix("x-forwarded-") { return keepX }
            return true
        }
        if families.contains(.xRealIP), let client = fields["fastgw-client"], let ip = Self.address(client) {
            out.append(HeaderField("x-real-ip", ip.description))
        }
        return out
    }

    /// The address of `ip:port`, `[ipv6]:port` or a bare address, IPv4-mapped ones as IPv4.
    static func address(_ text: String) -> IPAddress? {
        (IPEndpoint(text)?.address ?? IPAddress(text))?.unmapped
    }
}
