/// An IPv4 or IPv6 address as bytes in network order, read from and written as text the way
/// RFC 4291 / RFC 5952 say (strict: no leading zeros that could mean octal, no zone ids).
/// The shared model for client addresses: PROXY headers, CIDR sets, forwarding fields.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Sendable { case v4, v6 }

    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    public var family: Family { bytes.count == 4 ? .v4 : .v6 }

    /// `bytes`: 4 or 16 bytes in network order; nil for any other count.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Reads `192.0.2.1` or `2001:db8::1` (also `::ffff:192.0.2.1`); nil for anything else.
    public init?(_ text: String) {
        let utf8 = Array(text.utf8)
        if let v4 = Self.parseIPv4(utf8[...]) {
            bytes = v4
        } else if let v6 = Self.parseIPv6(utf8) {
            bytes = v6
        } else {
            return nil
        }
    }

    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it carries; any
    /// other address unchanged. Policies and PROXY headers compare addresses in this form.
    public var unmapped: IPAddress {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff else {
            return self
        }
        return IPAddress(checked: Array(bytes[12..<16]))
    }

    private init(checked bytes: [UInt8]) { self.bytes = bytes }

    /// Dotted quad, or RFC 5952 text (lowercase, longest run of two or more zero groups as `::`).
    public var description: String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var bestStart = -1, bestLength = 1, i = 0
        while i < 8 {
            guard groups[i] == 0 else { i += 1; continue }
            var j = i
            while j < 8 && groups[j] == 0 { j += 1 }
            if j - i > bestLength { bestStart = i; bestLength = j - i }
            i = j
        }
        func hex(_ range: Range<Int>) -> String { range.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    private static func parseIPv4(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        let parts = text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(4)
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            if part.count > 1 && part.first == UInt8(ascii: "0") { return nil }
            let value = part.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard value <= 255 else { return nil }
            out.append(UInt8(value))
        }
        return out
    }

    private static func parseIPv6(_ text: [UInt8]) -> [UInt8]? {
        guard text.count >= 2, text.count <= 45 else { return nil }
        var head: [UInt16] = [], tail: [UInt16] = []
        var sawGap = false
        var tailIPv4: [UInt8]? = nil
        var index = 0
        if text.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            sawGap = true
            index = 2
            if index == text.count { return [UInt8](repeating: 0, count: 16) }
        } else if text.first == UInt8(ascii: ":") {
            return nil
        }
        while index < text.count {
            var end = index
            while end < text.count && text[end] != UInt8(ascii: ":") { end += 1 }
            let field = text[index..<end]
            if field.contains(UInt8(ascii: ".")) {
                // An embedded IPv4 address ends the text.
                guard end == text.count, let v4 = parseIPv4(field) else { return nil }
                tailIPv4 = v4
            } else {
                guard (1...4).contains(field.count) else { return nil }
                var value: UInt16 = 0
                for b in field {
                    guard let digit = Hex.value(b) else { return nil }
                    value = value << 4 | UInt16(digit)
                }
                if sawGap { tail.append(value) } else { head.append(value) }
            }
            if end == text.count { break }
            // At a colon: `::` opens the gap (once), a single colon separates.
            if end + 1 < text.count && text[end + 1] == UInt8(ascii: ":") {
                guard !sawGap else { return nil }
                sawGap = true
                index = end + 2
                if index == text.count { break }
            } else {
                index = end + 1
                guard index < text.count else { return nil }
            }
        }
        let v4Groups = tailIPv4 == nil ? 0 : 2
        let count = head.count + tail.count + v4Groups
        if sawGap { guard count < 8 else { return nil } } else { guard count == 8 else { return nil } }
        var groups = head
        if sawGap { groups += [UInt16](repeating: 0, count: 8 - count) }
        groups += tail
        var out = groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
        if let tailIPv4 { out += tailIPv4 }
        return out
    }
}

/// An address and a port, written `192.0.2.1:443` or `[2001:db8::1]:443`.
public struct IPEndpoint: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Reads `ip:port` or `[ipv6]:port`; nil for anything else.
    public init?(_ text: String) {
        let address: Substring, port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            address = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            port = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            address = text[..<colon]
            port = text[text.index(after: colon)...]
            guard !address.contains(":") else { return nil }
        }
        guard let ip = IPAddress(String(address)), (1...5).contains(port.count),
              port.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt16(port) else { return nil }
        self.init(address: ip, port: value)
    }

    public var description: String {
        address.family == .v4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}
