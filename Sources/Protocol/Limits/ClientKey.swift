/// The unit per-client limits count by: an IPv4 address (/32), or the /64 prefix of an IPv6
/// address (one subscriber's network; counting whole IPv6 addresses would let one host
/// take 2^64 keys). IPv4-mapped IPv6 addresses count as their IPv4 address. 16 bytes.
public struct ClientKey: Hashable, Sendable, CustomStringConvertible {
    private let high: UInt64
    private let low: UInt64

    /// `bytes`: an address in network order, 4 (IPv4) or 16 (IPv6) bytes; nil otherwise.
    public init?(addressBytes bytes: [UInt8]) {
        switch bytes.count {
        case 4:
            self.init(ipv4: bytes)
        case 16:
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                self.init(ipv4: Array(bytes[12..<16]))
            } else {
                // Only the network half: the interface identifier is the client's to choose.
                self.init(high: bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, low: 0)
            }
        default:
            return nil
        }
    }

    /// The key of `address` (an IPv4-mapped one counts as its IPv4 address).
    public init(_ address: IPAddress) {
        // 4 or 16 bytes by IPAddress's own invariant.
        self.init(addressBytes: address.bytes)!
    }

    private init(ipv4 bytes: [UInt8]) {
        // A tag in the top half keeps 0.0.0.0/32 apart from ::/64.
        self.init(high: .max, low: bytes.reduce(0) { $0 << 8 | UInt64($1) })
    }

    private init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public var description: String {
        if high == .max {
            return (0..<4).map { String(low >> (24 - 8 * UInt64($0)) & 0xff) }.joined(separator: ".")
        }
        let groups = (0..<4).map { String(high >> (48 - 16 * UInt64($0)) & 0xffff, radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }
}
