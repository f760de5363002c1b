/// A set of address blocks with longest-prefix lookup, for trust lists and access policies.
/// One hash set per prefix length in use: a lookup masks the address once per distinct
/// length (at most 33 for IPv4, 129 for IPv6, a handful in practice) and probes that set, so
/// its cost does not grow with the number of blocks. Memory: about 32 bytes per block (a
/// 16-byte key in a hash table kept under 75% full) plus about 100 bytes per distinct
/// prefix length; 10,000 blocks take about 320 KiB.
public struct CIDRSet: Equatable, Sendable {
    /// The blocks as given (duplicates dropped), in order: what `description` and equality use.
    public private(set) var blocks: [CIDR] = []
    private var v4 = Table()
    private var v6 = Table()

    public init() {}

    public init(_ blocks: [CIDR]) {
        for b in blocks { insert(b) }
    }

    public var isEmpty: Bool { blocks.isEmpty }

    public mutating func insert(_ block: CIDR) {
        let inserted = block.network.family == .v4
            ? v4.insert(Key(block.network.bytes), length: block.prefixLength)
            : v6.insert(Key(block.network.bytes), length: block.prefixLength)
        if inserted { blocks.append(block) }
    }

    /// Whether any block holds `address` (IPv4-mapped IPv6 addresses match IPv4 blocks).
    public func contains(_ address: IPAddress) -> Bool {
        longestMatch(address) != nil
    }

    /// The most specific block holding `address`, if any.
    public func longestMatch(_ address: IPAddress) -> CIDR? {
        let a = address.unmapped
        let table = a.family == .v4 ? v4 : v6
        guard let length = table.longest(Key(a.bytes)) else { return nil }
        return CIDR(network: IPAddress(bytes: CIDR.mask(a.bytes, length))!, prefixLength: length)
    }

    public static func == (a: CIDRSet, b: CIDRSet) -> Bool { a.blocks == b.blocks }

    /// An address as two 64-bit halves (IPv4 in the top of `high`), so that masking and
    /// hashing work on integers instead of byte arrays.
    struct Key: Hashable, Sendable {
        var high: UInt64
        var low: UInt64

        init(_ bytes: [UInt8]) {
            var padded = bytes
            padded += [UInt8](repeating: 0, count: 16 - bytes.count)
            high = padded[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
            low = padded[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
        }

        /// The first `length` bits (counted from the top of `high`) kept.
        func masked(_ length: Int) -> Key {
            var k = self
            k.high &= length >= 64 ? .max : (length == 0 ? 0 : ~(UInt64.max >> UInt64(length)))
            let rest = length - 64
            k.low &= rest >= 64 ? .max : (rest <= 0 ? 0 : ~(UInt64.max >> UInt64(rest)))
            return k
        }
    }

    private struct Table: Sendable {
        var byLength: [Int: Set<Key>] = [:]
        /// The lengths in `byLength`, longest first.
        var lengths: [Int] = []

        mutating func insert(_ key: Key, length: Int) -> Bool {
            if byLength[length] == nil {
                lengths.append(length)
                lengths.sort(by: >)
            }
            return byLength[length, default: []].insert(key).inserted
        }

        func longest(_ key: Key) -> Int? {
            for length in lengths where byLength[length]!.contains(key.masked(length)) { return length }
            return nil
        }
    }
}
