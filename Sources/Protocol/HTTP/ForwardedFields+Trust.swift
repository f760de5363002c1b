extension ForwardedFields {
    /// The hop a request arrived from: the address that sent it (the socket's peer, or the
    /// client a trusted balancer's PROXY header named) and whether that address is a
    /// trusted proxy whose forwarding fields are kept.
    public struct Hop: Sendable {
        public let peer: IPEndpoint?
        public let trusted: Bool
        /// The peer as X-Forwarded-For names it: the address alone, `unknown` when unknown.
        public let forwardedFor: String
        /// The peer as a Forwarded `for=` node: quoted `ip:port` (IPv6 in brackets), or
        /// `unknown`. Both texts are made once per connection, not once per request.
        let forwardedNode: String

        public init(peer: IPEndpoint?, trusted: Bool) {
            self.peer = peer
            self.trusted = trusted
            forwardedFor = peer.map { "\($0.address)" } ?? "unknown"
            forwardedNode = peer.map { "\"\($0)\"" } ?? "unknown"
        }

        /// The hop of a public connection whose client is `client` (the PROXY header's
        /// source, else the socket peer). `named` is false when a PROXY header was read but
        /// named no client (`ProxyHeader.Addresses.namesClient`): `client` is then the
        /// balancer, which only relays bytes it did not write, so its trust does not pass
        /// to them and the request's forwarding fields are dropped like any client's.
        public init(client: IPEndpoint?, named: Bool, trustedProxies: CIDRSet) {
            let trusted = named && (client.map { trustedProxies.contains($0.address) } ?? false)
            self.init(peer: client, trusted: trusted)
        }
    }

    /// At most this many X-Forwarded-For entries are examined, from the right: a longer
    /// chain of trusted proxies ends the walk at the last entry examined.
    public static let maxForwardedForEntries = 32

    /// The client of a request from a trusted proxy `peer` that carried `forwardedFor` (the
    /// X-Forwarded-For values in order): walking right to left, the first address not in
    /// `trusted`. An entry that is not an address ends the walk at the hop that passed it
    /// on, since nothing before it can be checked; so does the entry cap. When every
    /// address is trusted the left-most one examined is the client.
    public static func client(forwardedFor: [String], peer: IPAddress, trusted: CIDRSet) -> IPAddress {
        var client = peer.unmapped
        guard trusted.contains(client) else { return client }
        var examined = 0
        for value in forwardedFor.reversed() {
            for entry in value.split(separator: ",").reversed() {
                guard examined < maxForwardedForEntries, let address = forwardedForAddress(entry) else { return client }
                examined += 1
                client = address.unmapped
                if !trusted.contains(client) { return client }
            }
        }
        return client
    }

    /// One X-Forwarded-For entry: an address, optionally with a port (`1.2.3.4:80`,
    /// `[2001:db8::1]:80`) or brackets, as proxies write them.
    static func forwardedForAddress(_ entry: Substring) -> IPAddress? {
        let text = String(entry).strippingSpaces()
        if let a = IPAddress(text) { return a }
        if let e = IPEndpoint(text) { return e.address }
        if text.hasPrefix("["), text.hasSuffix("]") { return IPAddress(String(text.dropFirst().dropLast())) }
        return nil
    }

    /// The RFC 7239 element this gateway adds: `for=` the hop's address and port (quoted,
    /// IPv6 in brackets), `proto=` the scheme, `host=` the Host asked for.
    public static func forwardedElement(hop: Hop, proto: String, host: String) -> String {
        "for=\(hop.forwardedNode);proto=\(proto);host=\(tokenOrQuoted(host))"
    }

    /// A value as an RFC 7230 token when it is one, else as a quoted-string.
    static func tokenOrQuoted(_ value: String) -> String {
        if !value.isEmpty, value.utf8.allSatisfy(HTTPHeadParser.isTokenByte) { return value }
        var out = "\""
        for c in value {
            if c == "\"" || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out + "\""
    }

    /// The forwarding fields of a request from `hop` whose client-sent fields were dropped
    /// (`isClientClaim`): X-Forwarded-For and Forwarded, each continuing the chain the
    /// request carried when the hop is trusted, then X-Forwarded-Proto and -Host — a trusted
    /// hop's own when well-formed (a proxy that terminated TLS and talks http to the gateway
    /// knows the scheme the client used; overwriting it sends upstreams into redirect loops),
    /// else this hop's. The `Forwarded` element added always describes this hop.
    public static func fields(hop: Hop, proto: String, host: String, head: HTTPHead) -> [HeaderField] {
        var forwardedFor = hop.forwardedFor
        var forwarded = forwardedElement(hop: hop, proto: proto, host: host)
        var outerProto = proto, outerHost = host
        if hop.trusted {
            let chain = head.values("X-Forwarded-For").map { $0.strippingSpaces() }.filter { !$0.isEmpty }
            if !chain.isEmpty { forwardedFor = (chain + [forwardedFor]).joined(separator: ", ") }
            let elements = head.values("Forwarded").map { $0.strippingSpaces() }.filter { !$0.isEmpty }
            if !elements.isEmpty { forwarded = (elements + [forwarded]).joined(separator: ", ") }
            if let kept = single(head.values("X-Forwarded-Proto")).map({ $0.lowercased() }), kept == "http" || kept == "https" {
                outerProto = kept
            }
            if let kept = single(head.values("X-Forwarded-Host")), isSaneHost(kept) { outerHost = kept }
        }
        return [
            HeaderField("x-forwarded-for", forwardedFor), HeaderField("forwarded", forwarded),
            HeaderField("x-forwarded-proto", outerProto), HeaderField("x-forwarded-host", outerHost),
        ]
    }

    /// The one value of a field sent once without a list; nil otherwise (which of several
    /// values a chain of proxies meant is not guessed).
    private static func single(_ values: [String]) -> String? {
        guard values.count == 1 else { return nil }
        let value = values[0].strippingSpaces()
        return value.isEmpty || value.contains(",") ? nil : value
    }

    /// `host[:port]`: a DNS name or IPv4 address (letters, digits, `-`, `.`, `_`), or an IPv6
    /// address in brackets, with an optional decimal port; at most 255 bytes.
    static func isSaneHost(_ text: String) -> Bool {
        guard text.utf8.count <= 255 else { return false }
        var name = Substring(text)
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), let inner = IPAddress(String(text[text.index(after: text.startIndex)..<close])),
                  inner.family == .v6 else { return false }
            name = text[text.index(after: close)...]
            if name.isEmpty { return true }
            guard name.hasPrefix(":") else { return false }
            return isPort(name.dropFirst())
        }
        if let colon = name.lastIndex(of: ":") {
            guard isPort(name[name.index(after: colon)...]) else { return false }
            name = name[..<colon]
        }
        return !name.isEmpty && name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_")
        }
    }

    private static func isPort(_ text: Substring) -> Bool {
        (1...5).contains(text.utf8.count) && text.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } && (Int(text) ?? 0) <= 65535
    }
}
