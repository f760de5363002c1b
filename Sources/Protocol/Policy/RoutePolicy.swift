/// One `[[route_policy]]`: policies for a host (and path prefix) or a TCP port, whichever
/// agent serves it.
public struct RoutePolicy: Equatable, Sendable {
    public var hosts: [HostPattern]
    /// `/` when not given (the whole host).
    public var pathPrefix: String
    public var ports: [Int]
    public var policies: [String]

    public init(hosts: [HostPattern], pathPrefix: String = "/", ports: [Int] = [], policies: [String]) {
        self.hosts = hosts
        self.pathPrefix = pathPrefix
        self.ports = ports
        self.policies = policies
    }
}

/// Which `[[route_policy]]` tables apply to a request or a TCP connection. Every match
/// applies, so a more specific table can add rules but never lift one (an office-only host
/// stays office-only when a path below it gets a rate limit). Matches come least specific
/// first: wildcard hosts before exact ones (longer suffix later), then shorter path prefixes
/// before longer ones, then config order; a policy named twice is listed once, where it
/// first appears.
public struct RoutePolicyTable: Equatable, Sendable {
    public let entries: [RoutePolicy]

    public init(_ entries: [RoutePolicy] = []) {
        self.entries = entries
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// The policy names for a request to `host` (normalized, `HostPattern.normalize`) and
    /// `path` (normalized), in the order they are checked.
    public func policies(host: String, path: String) -> [String] {
        var matches: [(order: (Int, Int, Int), names: [String])] = []
        let path = Self.merged(path)
        for (i, e) in entries.enumerated() where Self.covers(e.pathPrefix, path) {
            guard let best = HostPattern.bestMatch(in: e.hosts, for: host) else { continue }
            matches.append(((e.hosts[best].specificity, e.pathPrefix == "/" ? 0 : e.pathPrefix.utf8.count, i), e.policies))
        }
        matches.sort { $0.order < $1.order }
        return Self.unique(matches.flatMap(\.names))
    }

    /// The policy names for a connection to TCP `port`, in config order.
    public func policies(port: Int) -> [String] {
        Self.unique(entries.filter { $0.ports.contains(port) }.flatMap(\.policies))
    }

    /// Like `PathPrefix.matches`, but a `;` also ends a segment: many servers read
    /// `/admin;x=1` as `/admin`, and a rule must not be missed where routing may differ.
    static func covers(_ prefix: String, _ path: String) -> Bool {
        if PathPrefix.matches(prefix, path) { return true }
        let p = prefix.utf8, t = path.utf8
        return t.starts(with: p) && t.dropFirst(p.count).first == UInt8(ascii: ";")
    }

    /// The path with runs of `/` made one: most servers read `//admin` as `/admin`, and the
    /// normal form keeps empty segments (the upstream receives the path as sent).
    static func merged(_ path: String) -> String {
        guard path.contains("//") else { return path }
        var out = ""
        out.reserveCapacity(path.utf8.count)
        var lastSlash = false
        for c in path {
            if c == "?" { return out + path[path.firstIndex(of: "?")!...] }
            if c == "/" && lastSlash { continue }
            lastSlash = c == "/"
            out.append(c)
        }
        return out
    }

    static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}

/// Reading `[[route_policy]]` tables (GatewayConfig.parse).
extension RoutePolicy {
    /// Claims (`host path` or `:port`) already taken by earlier tables, with their lines.
    typealias Claims = [String: Int]

    /// One table; nil when it has errors (already reported with their lines). `policies`
    /// is returned separately for the check against the `[[policy]]` names.
    static func read(_ t: inout TableReader, claims: inout Claims) -> RoutePolicy? {
        t.label = "route_policy: "
        var ok = true
        var hosts: [HostPattern] = []
        let hostTexts = t.strings("hosts")
        if t.has("hosts") && hostTexts == nil { ok = false }
        if hostTexts == [] {
            t.error("hosts", "hosts must name at least one host")
            ok = false
        }
        for text in hostTexts ?? [] {
            switch HostPattern.parse(text) {
            case .success(let p): hosts.append(p)
            case .failure(let e):
                t.error("hosts", "hosts: \(e)")
                ok = false
            }
        }
        var prefix = "/"
        if let text = t.string("path_prefix") {
            switch PathPrefix.normalize(text) {
            case .success(let p): prefix = p
            case .failure(let r):
                t.error("path_prefix", r.reason)
                ok = false
            }
            if !t.has("hosts") {
                t.error("path_prefix", "path_prefix needs hosts (a path belongs to a host)")
                ok = false
            }
        }
        let portList = t.ints("ports", range: 1...65535)
        if t.has("ports") && portList == nil { ok = false }
        if portList == [] {
            t.error("ports", "ports must name at least one port")
            ok = false
        }
        let ports = portList ?? []
        if !t.has("hosts") && !t.has("ports") && !t.has("path_prefix") {
            t.error("policy", "give it hosts (with an optional path_prefix) or ports")
            ok = false
        }
        if !t.has("policy") {
            t.error("policy", "policy is required (the [[policy]] names to apply)")
            ok = false
        }
        let policies = t.policyNames()
        if policies.isEmpty { ok = false }
        t.rejectUnknownKeys()
        guard ok else { return nil }
        let line = t.line(of: "policy") ?? 0
        for (key, what, claim) in hosts.map({ ("hosts", "host \($0) with path_prefix \(prefix)", "\($0) \(prefix)") })
            + ports.map({ ("ports", "port \($0)", ":\($0)") })
        {
            if let earlier = claims[claim] {
                t.error(key, "\(what) already has a [[route_policy]] (line \(earlier)): name both policies in one")
                ok = false
            } else {
                claims[claim] = line
            }
        }
        return ok ? RoutePolicy(hosts: hosts, pathPrefix: prefix, ports: ports, policies: policies) : nil
    }
}
