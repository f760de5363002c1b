/// A host name an HTTP service claims or an agent is allowed: exact (`app.example.com`) or
/// a wildcard (`*.example.com`, any name below example.com, not example.com itself).
/// Compared lower-case, without a port or a trailing dot.
public enum HostPattern: Hashable, Sendable, CustomStringConvertible {
    case exact(String)
    case wildcard(suffix: String)

    public static func parse(_ text: String) -> Result<HostPattern, HostPatternError> {
        let lower = text.lowercased()
        if lower.hasPrefix("*.") {
            let suffix = String(lower.dropFirst(2))
            guard isHostName(suffix) else { return .failure(.invalid(text)) }
            return .success(.wildcard(suffix: suffix))
        }
        guard isHostName(lower) else { return .failure(.invalid(text)) }
        return .success(.exact(lower))
    }

    /// The host of a request (`Host` or `:authority`, or SNI) as patterns compare it.
    public static func normalize(_ authority: String) -> String {
        var host = Substring(authority.asciiLowercased())
        if host.hasPrefix("[") {
            if let close = host.firstIndex(of: "]") { host = host[...close] }
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        if host.hasSuffix(".") { host = host.dropLast() }
        return String(host)
    }

    public func matches(_ host: String) -> Bool {
        switch self {
        case .exact(let name): return host == name
        case .wildcard(let suffix): return host.count > suffix.count + 1 && host.hasSuffix("." + suffix)
        }
    }

    /// Whether every host this pattern matches is also matched by `self` (used to check a
    /// service's hosts against the agent's `allow_hosts`).
    public func covers(_ other: HostPattern) -> Bool {
        switch (self, other) {
        case (.exact(let a), .exact(let b)): return a == b
        case (.exact, .wildcard): return false
        case (.wildcard, .exact(let b)): return matches(b)
        case (.wildcard(let a), .wildcard(let b)): return a == b || b.hasSuffix("." + a)
        }
    }

    /// The index of the pattern that matches `host` most specifically (exact beats wildcard,
    /// longer suffix beats shorter, the first of equals wins); nil when none matches.
    public static func bestMatch(in patterns: [HostPattern], for host: String) -> Int? {
        var best: (index: Int, specificity: Int)?
        for (i, p) in patterns.enumerated() where p.matches(host) {
            if best == nil || p.specificity > best!.specificity { best = (i, p.specificity) }
        }
        return best?.index
    }

    /// Exact names first, then wildcards by longer suffix: the most specific match wins.
    var specificity: Int {
        switch self {
        case .exact(let name): return 1_000 + name.count
        case .wildcard(let suffix): return suffix.count
        }
    }

    public var description: String {
        switch self {
        case .exact(let name): return name
        case .wildcard(let suffix): return "*." + suffix
        }
    }

    /// Letters, digits, `-` and `.` in labels of 1–63 characters; 253 at most.
    private static func isHostName(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 253 else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { c in
                    (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2D
                }
        }
    }
}

public enum HostPatternError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let text): return "\"\(text)\" is not a host name or *.suffix pattern"
        }
    }
}
