/// The destinations a `type = "network"` service lets visitors reach (`allow = […]`): each
/// rule is an address block or a host name, with a port or a port range —
/// `10.0.0.0/8:22`, `db.internal:5432`, `[2001:db8::/32]:443`, `10.1.2.3:8000-8100`,
/// `*.corp.internal:443`. A destination is allowed when one rule covers it; nothing else is
/// (never an open proxy). Pure: the agent resolves names and asks again per address.
public struct NetworkAllow: Equatable, Sendable {
    public enum Target: Equatable, Sendable {
        case block(CIDR)
        /// Lowercased, without a trailing dot; `*.suffix` matches names below `suffix` only.
        case name(String)
    }

    public struct Rule: Equatable, Sendable, CustomStringConvertible {
        public let target: Target
        public let ports: ClosedRange<Int>

        public var description: String {
            let p = ports.lowerBound == ports.upperBound ? "\(ports.lowerBound)" : "\(ports.lowerBound)-\(ports.upperBound)"
            switch target {
            case .block(let b): return b.network.family == .v6 ? "[\(b)]:\(p)" : "\(b):\(p)"
            case .name(let n): return "\(n):\(p)"
            }
        }
    }

    public let rules: [Rule]

    public init(rules: [Rule]) {
        self.rules = rules
    }

    /// One rule, or why not in words an operator can act on.
    public static func parseRule(_ text: String) -> Result<Rule, ParseError> {
        func no(_ why: String) -> Result<Rule, ParseError> { .failure(ParseError(description: "\"\(text)\": \(why)")) }
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return no("expected [address or block]:port")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return no("a port or port range is required, e.g. 10.0.0.0/8:22 or db.internal:5432") }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { return no("IPv6 addresses and blocks go in brackets: [2001:db8::/32]:443") }
        }
        guard let ports = portRange(portPart) else {
            return no("port \"\(portPart)\" is not a port (1-65535) or a range (8000-8100)")
        }
        let host = String(hostPart)
        if host.first.map({ $0.isNumber || $0 == ":" }) == true || host.contains(":") || host.contains("/") {
            switch CIDR.parse(host) {
            case .success(let block): return .success(Rule(target: .block(block), ports: ports))
            case .failure(let e):
                // A name may start with a digit ("1password.internal"); a block never has letters past hex.
                if host.contains("/") || IPAddress(host) != nil || host.allSatisfy({ $0.isNumber || $0 == "." }) {
                    return .failure(ParseError(description: e.description))
                }
            }
        }
        guard let name = normalizedName(host, wildcard: true) else {
            return no("\"\(host)\" is neither an address block nor a host name (letters, digits, '-', '.'; '*.' only in front)")
        }
        return .success(Rule(target: .name(name), ports: ports))
    }

    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Whether the destination named `host` (not an address) is allowed by a name rule as
    /// written: then any address it resolves to may be connected.
    public func permitsName(_ host: String, port: Int) -> Bool {
        guard let name = Self.normalizedName(host, wildcard: false) else { return false }
        return rules.contains { rule in
            guard rule.ports.contains(port), case .name(let pattern) = rule.target else { return false }
            if pattern.hasPrefix("*.") { return name.hasSuffix(pattern.dropFirst()) }
            return pattern == name
        }
    }

    /// Whether an address (given, or resolved from a name no name rule covers) is allowed.
    public func permits(_ address: IPAddress, port: Int) -> Bool {
        let address = address.unmapped
        let guarded = Self.guardedRange(of: address)
        return rules.contains { rule in
            guard rule.ports.contains(port), case .block(let block) = rule.target, block.contains(address) else { return false }
            // A broad block (`0.0.0.0/0`) does not reach the agent's own loopback, "this
            // host", link-local (cloud metadata) or multicast addresses: only a rule that
            // names that range, or a part of it, does.
            return guarded.map { block.prefixLength >= $0.prefixLength } ?? true
        }
    }

    /// An address a name rule's host resolved to: any address but the guarded ranges, which
    /// need a block rule naming them — or, for loopback, the rule `localhost` itself — so
    /// a name cannot be pointed at the agent's own services or metadata.
    public func permitsResolved(_ address: IPAddress, port: Int, name: String) -> Bool {
        let address = address.unmapped
        guard Self.guarded.contains(where: { $0.contains(address) }) else { return true }
        if Self.normalizedName(name, wildcard: false) == "localhost", Self.loopback.contains(where: { $0.contains(address) }) {
            return true
        }
        return permits(address, port: port)
    }

    /// The guarded range `address` lies in (loopback, 0.0.0.0/8, link-local, multicast and
    /// their IPv6 kin), or nil.
    public static func guardedRange(of address: IPAddress) -> CIDR? {
        guarded.first { $0.contains(address.unmapped) }
    }

    static let loopback: [CIDR] = ["127.0.0.0/8", "::1/128"].map { try! CIDR.parse($0).get() }

    /// Ranges a broad rule does not open (see `permits`).
    static let guarded: [CIDR] = ["0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32",
                                  "::/128", "::1/128", "fe80::/10", "ff00::/8"].map { try! CIDR.parse($0).get() }

    /// Whether some rule could allow `host` at all (before resolving): a name rule for it,
    /// or any address block for a name that may resolve into one.
    public func mayPermit(host: String, port: Int) -> Bool {
        if let address = IPAddress(host) { return permits(address, port: port) }
        return permitsName(host, port: port) || rules.contains { r in
            if case .block = r.target { return r.ports.contains(port) }
            return false
        }
    }

    static func portRange(_ text: Substring) -> ClosedRange<Int>? {
        func port(_ s: Substring) -> Int? {
            guard (1...5).contains(s.count), s.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(s), (1...65535).contains(n) else { return nil }
            return n
        }
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard let low = port(parts[0]) else { return nil }
        guard parts.count == 2 else { return low...low }
        guard let high = port(parts[1]), high >= low else { return nil }
        return low...high
    }

    /// A DNS name lowercased without its trailing dot; nil when it is not one (labels of
    /// letters, digits and '-', at most 253 characters). `wildcard`: `*.` may lead.
    public static func normalizedName(_ text: String, wildcard: Bool) -> String? {
        var name = text.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        var body = Substring(name)
        if wildcard, body.hasPrefix("*.") { body = body.dropFirst(2) }
        guard !body.isEmpty, name.utf8.count <= 253 else { return nil }
        for label in body.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.count), label.first != "-", label.last != "-",
                  label.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }) else { return nil }
        }
        return name
    }
}
