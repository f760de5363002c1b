/// `NO_PROXY` / `no_proxy`: the gateways an agent with `proxy = "env"` reaches directly.
/// A comma (or space) separated list, read the way curl reads it: `*` (everything), a host
/// name, which also covers its subdomains (`example.com` and `.example.com` both match
/// `example.com` and `gw.example.com`), an IP address, or a CIDR block. Names are compared
/// as written, without DNS: an address entry matches only a gateway written as an address.
/// A port in an entry is ignored (the entry applies to every port).
public struct NoProxyList: Equatable, Sendable {
    public private(set) var matchesEverything = false
    public private(set) var domains: [String] = []
    public private(set) var blocks = CIDRSet()

    public init() {}

    public var isEmpty: Bool { !matchesEverything && domains.isEmpty && blocks.isEmpty }

    /// Reads the variable's value. An entry that looks like an address but is not a valid
    /// one (`10.0.0.0/33`, host bits set) is an error: silently not bypassing the proxy for
    /// a network the operator listed would be a surprise.
    public static func parse(_ text: String) -> Result<NoProxyList, CIDR.ParseError> {
        var list = NoProxyList()
        for raw in text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }) {
            var entry = raw.lowercased()
            if entry == "*" {
                list.matchesEverything = true
                continue
            }
            // A port is dropped, not matched: `[::1]:7443` is `::1`, `gw.example.com:7443` is `gw.example.com`.
            if entry.hasPrefix("["), let close = entry.firstIndex(of: "]") {
                entry = String(entry[entry.index(after: entry.startIndex)..<close])
            } else if entry.filter({ $0 == ":" }).count == 1, let colon = entry.firstIndex(of: ":") {
                entry = String(entry[..<colon])
            }
            if looksLikeAddress(entry) {
                switch CIDR.parse(entry) {
                case .success(let block): list.blocks.insert(block)
                case .failure(let e): return .failure(e)
                }
                continue
            }
            while entry.hasPrefix("*") || entry.hasPrefix(".") { entry.removeFirst() }
            while entry.hasSuffix(".") { entry.removeLast() }
            if !entry.isEmpty { list.domains.append(entry) }
        }
        return .success(list)
    }

    /// Whether a gateway written as `host` is reached directly.
    public func matches(host: String) -> Bool {
        if matchesEverything { return true }
        if let address = IPAddress(host) { return blocks.contains(address) }
        var name = host.lowercased()
        while name.hasSuffix(".") { name.removeLast() }
        return domains.contains { name == $0 || name.hasSuffix("." + $0) }
    }

    /// Digits, dots, colons and a `/`: an IPv4 or IPv6 address or block, never a host name
    /// (a name's last label is not all digits).
    private static func looksLikeAddress(_ entry: String) -> Bool {
        entry.contains(":") || entry.contains("/")
            || (!entry.isEmpty && entry.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") })
    }
}
