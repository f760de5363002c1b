/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or a bare address (`/32`, `/128`).
/// Host bits set (`10.0.0.1/8`) are refused rather than silently cleared: an operator who
/// wrote that may have meant a single host, and a trust list must not guess. IPv4-mapped
/// blocks (`::ffff:10.0.0.0/104`) are stored as the IPv4 block they name, so one entry
/// matches a client however its socket reports it.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    /// The network address (host bits zero), IPv4 or IPv6.
    public let network: IPAddress
    public let prefixLength: Int

    /// Why a text is not a block, in words an operator can act on.
    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public let description: String
    }

    public static func parse(_ text: String) -> Result<CIDR, ParseError> {
        func no(_ why: String) -> Result<CIDR, ParseError> { .failure(ParseError(description: "\"\(text)\": \(why)")) }
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return no("not an address or block (examples: 192.0.2.7, 10.0.0.0/8, 2001:db8::/32)") }
        let width = address.bytes.count * 8
        var length = width
        if parts.count == 2 {
            let digits = parts[1]
            guard (1...3).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(digits), n <= width else {
                return no("the prefix length must be a number from 0 to \(width)")
            }
            length = n
        }
        let masked = Self.mask(address.bytes, length)
        guard masked == address.bytes else {
            let fixed = CIDR(network: IPAddress(bytes: masked)!, prefixLength: length)
            return no("host bits are set after /\(length) (the block is \(fixed))")
        }
        return .success(CIDR(network: address, prefixLength: length).unmapped)
    }

    init(network: IPAddress, prefixLength: Int) {
        self.network = network
        self.prefixLength = prefixLength
    }

    /// `::ffff:a.b.c.d/n` with n ≥ 96 as the IPv4 block `a.b.c.d/(n-96)`.
    private var unmapped: CIDR {
        guard network.family == .v6, prefixLength >= 96, network.unmapped.family == .v4 else { return self }
        return CIDR(network: network.unmapped, prefixLength: prefixLength - 96)
    }

    public func contains(_ address: IPAddress) -> Bool {
        let a = address.unmapped
        return a.family == network.family && Self.mask(a.bytes, prefixLength) == network.bytes
    }

    public var description: String { "\(network)/\(prefixLength)" }

    /// Blocks shorter than these are too broad to trust as proxies: an IPv4 /8 is the
    /// largest single allocation a network holds; an IPv6 /32 is a provider's allocation.
    public static let broadIPv4Prefix = 8
    public static let broadIPv6Prefix = 32

    /// Whether the block is broader than `broadIPv4Prefix` / `broadIPv6Prefix` (`0.0.0.0/0`,
    /// `::/0` and `::ffff:0:0/96`, which is read as `0.0.0.0/0`, among them): as a trust
    /// list entry it trusts much of the Internet.
    public var isBroad: Bool {
        prefixLength < (network.family == .v4 ? Self.broadIPv4Prefix : Self.broadIPv6Prefix)
    }

    /// `bytes` with every bit after the first `length` cleared.
    static func mask(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        var out = bytes
        for i in 0..<out.count {
            let kept = min(max(length - 8 * i, 0), 8)
            out[i] &= kept == 8 ? 0xff : ~(0xff >> UInt8(kept))
        }
        return out
    }
}
