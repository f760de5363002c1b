/// Writes a `ProxyHeader` as the bytes haproxy's proxy-protocol.txt specifies: the text line
/// of version 1 (§2.1) or the binary block of version 2 (§2.2), always in one piece, so the
/// agent can put it first on an upstream connection in a single write.
public enum ProxyHeaderEncoder {
    /// The twelve bytes every version 2 header starts with.
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    public static func encode(_ header: ProxyHeader) -> [UInt8] {
        switch header.version {
        case .v1: return encodeV1(header.addresses)
        case .v2: return encodeV2(header.addresses)
        }
    }

    /// The header for a connection the agent makes on behalf of a public client, from the
    /// tunnel's `fastgw-client` and `fastgw-destination` texts (`ip:port`, `[ipv6]:port`, or a
    /// bare address read as port 0). When either is missing or not an IP endpoint (a Unix
    /// socket listener, an older gateway) the header says so: v1 `UNKNOWN`, v2 `LOCAL`, which
    /// receivers accept and attribute to the agent itself.
    public static func header(version: ProxyHeader.Version, client: String?, destination: String?) -> ProxyHeader {
        guard let source = client.flatMap(endpoint), let target = destination.flatMap(endpoint) else {
            return ProxyHeader(version: version, addresses: .local)
        }
        return ProxyHeader(version: version, addresses: .proxied(source: source, destination: target))
    }

    private static func endpoint(_ text: String) -> IPEndpoint? {
        IPEndpoint(text) ?? IPAddress(text).map { IPEndpoint(address: $0, port: 0) }
    }

    /// Both addresses in one family, as the header has room for one: two IPv4 addresses
    /// (IPv4-mapped IPv6 ones included) stay IPv4; otherwise an IPv4 one is written
    /// IPv4-mapped (`::ffff:a.b.c.d`) beside the IPv6 one, as haproxy does for mixed pairs.
    static func sameFamily(_ source: IPEndpoint, _ destination: IPEndpoint) -> (IPEndpoint, IPEndpoint) {
        let s = IPEndpoint(address: source.address.unmapped, port: source.port)
        let d = IPEndpoint(address: destination.address.unmapped, port: destination.port)
        if s.address.family == d.address.family { return (s, d) }
        return (mapped(s), mapped(d))
    }

    private static func mapped(_ e: IPEndpoint) -> IPEndpoint {
        guard e.address.family == .v4 else { return e }
        let bytes = [UInt8](repeating: 0, count: 10) + [0xff, 0xff] + e.address.bytes
        return IPEndpoint(address: IPAddress(bytes: bytes)!, port: e.port)
    }

    /// `PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n`, or `PROXY UNKNOWN\r\n`. IPv6
    /// addresses in RFC 5952 text, which the specification's hexadecimal groups with one `::`
    /// admit (an IPv4-mapped address as `::ffff:c000:201`, never in dotted form).
    private static func encodeV1(_ addresses: ProxyHeader.Addresses) -> [UInt8] {
        guard case .proxied(let source, let destination) = addresses else { return Array("PROXY UNKNOWN\r\n".utf8) }
        let (s, d) = sameFamily(source, destination)
        let family = s.address.family == .v4 ? "TCP4" : "TCP6"
        return Array("PROXY \(family) \(s.address) \(d.address) \(s.port) \(d.port)\r\n".utf8)
    }

    /// Signature, version 2 with command LOCAL (0x20) or PROXY (0x21), family and transport
    /// (0x11 TCP over IPv4, 0x21 TCP over IPv6, 0x00 unspecified), the address block's length,
    /// then source and destination addresses and ports in network order. No TLVs.
    private static func encodeV2(_ addresses: ProxyHeader.Addresses) -> [UInt8] {
        var out = v2Signature
        guard case .proxied(let source, let destination) = addresses else {
            // LOCAL for `.local`; PROXY with an unspecified address block for `.unknown`.
            out += [addresses == .local ? 0x20 : 0x21, 0x00, 0x00, 0x00]
            return out
        }
        let (s, d) = sameFamily(source, destination)
        let isV4 = s.address.family == .v4
        let length = isV4 ? 12 : 36
        out += [0x21, isV4 ? 0x11 : 0x21, UInt8(length >> 8), UInt8(length & 0xff)]
        out += s.address.bytes
        out += d.address.bytes
        out += [UInt8(s.port >> 8), UInt8(s.port & 0xff), UInt8(d.port >> 8), UInt8(d.port & 0xff)]
        return out
    }
}
