extension ForwardedFields {
    /// A `Forwarded` (RFC 7239) chain longer than this many bytes is not read: its client is
    /// the trusted hop that sent it.
    public static let maxForwardedBytes = 8192

    /// The client of a request from a trusted proxy that carried only `Forwarded` (no
    /// X-Forwarded-For): walking its elements right to left, the first `for=` address not
    /// in `trusted`. An element without `for=`, an obfuscated (`_…`) or `unknown` node, or
    /// anything that is not an address ends the walk at the hop that passed it on; so does
    /// the entry cap. A chain that does not parse as RFC 7239 names nobody past the peer.
    public static func client(forwarded: [String], peer: IPAddress, trusted: CIDRSet) -> IPAddress {
        var client = peer.unmapped
        guard trusted.contains(client), let nodes = forNodes(forwarded) else { return client }
        for node in nodes.reversed().prefix(maxForwardedForEntries) {
            guard let node, let address = nodeAddress(node) else { return client }
            client = address.unmapped
            if !trusted.contains(client) { return client }
        }
        return client
    }

    /// The request's client when `peer` is a trusted proxy: from X-Forwarded-For when the
    /// request has it, else from `Forwarded`, else the peer.
    public static func client(head: HTTPHead, peer: IPAddress, trusted: CIDRSet) -> IPAddress {
        let xff = head.values("X-Forwarded-For")
        if !xff.isEmpty { return client(forwardedFor: xff, peer: peer, trusted: trusted) }
        return client(forwarded: head.values("Forwarded"), peer: peer, trusted: trusted)
    }

    /// Each element's `for=` value (unquoted), nil for an element without one; nil for the
    /// whole when the values are not `element *( "," element )` of RFC 7239 §4, or too long.
    static func forNodes(_ values: [String]) -> [String?]? {
        guard values.reduce(0, { $0 + $1.utf8.count }) <= maxForwardedBytes else { return nil }
        var nodes: [String?] = []
        for value in values {
            var scanner = Scanner(Array(value.utf8))
            while true {
                var node: String?
                scanner.skipSpaces()
                // An empty element (`a, , b`) is allowed by the list rule and names nobody.
                if !scanner.atEnd, scanner.peek != UInt8(ascii: ",") {
                    while true {
                        guard let name = scanner.token(), scanner.take(UInt8(ascii: "=")), let v = scanner.tokenOrQuoted() else { return nil }
                        if name.lowercased() == "for" {
                            guard node == nil else { return nil }  // a parameter appears once per element
                            node = v
                        }
                        scanner.skipSpaces()
                        guard scanner.take(UInt8(ascii: ";")) else { break }
                        scanner.skipSpaces()
                    }
                }
                nodes.append(node)
                scanner.skipSpaces()
                if scanner.atEnd { break }
                guard scanner.take(UInt8(ascii: ",")) else { return nil }
            }
        }
        return nodes
    }

    /// A `for=` node as an address: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`,
    /// `[2001:db8::1]:80`. `unknown`, obfuscated names and ports, and bare IPv6 are nil.
    static func nodeAddress(_ node: String) -> IPAddress? {
        if node.hasPrefix("[") {
            if node.hasSuffix("]") { return IPAddress(String(node.dropFirst().dropLast())).flatMap { $0.family == .v6 ? $0 : nil } }
            return IPEndpoint(node).flatMap { $0.address.family == .v6 ? $0.address : nil }
        }
        if let a = IPAddress(node) { return a.family == .v4 ? a : nil }
        return IPEndpoint(node).flatMap { $0.address.family == .v4 ? $0.address : nil }
    }

    /// Reads RFC 7230 tokens and quoted-strings from a field value's bytes.
    private struct Scanner {
        let bytes: [UInt8]
        var i = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { i >= bytes.count }
        var peek: UInt8? { atEnd ? nil : bytes[i] }

        mutating func skipSpaces() {
            while let b = peek, b == 0x20 || b == 0x09 { i += 1 }
        }

        mutating func take(_ b: UInt8) -> Bool {
            guard peek == b else { return false }
            i += 1
            return true
        }

        mutating func token() -> String? {
            let start = i
            while let b = peek, HTTPHeadParser.isTokenByte(b) { i += 1 }
            return i > start ? String(decoding: bytes[start..<i], as: UTF8.self) : nil
        }

        mutating func tokenOrQuoted() -> String? {
            guard take(UInt8(ascii: "\"")) else { return token() }
            var out: [UInt8] = []
            while let b = peek {
                i += 1
                switch b {
                case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let escaped = peek, escaped == 0x09 || (escaped >= 0x20 && escaped != 0x7F) else { return nil }
                    i += 1
                    out.append(escaped)
                case 0x09, 0x20...0x7E, 0x80...0xFF: out.append(b)
                default: return nil
                }
            }
            return nil  // unterminated
        }
    }
}
