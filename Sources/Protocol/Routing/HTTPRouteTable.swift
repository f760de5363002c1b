/// Which live agent connections serve which host names and path prefixes (gateway side,
/// I/O-free; DESIGN §3). A request goes to the most specific host match (an exact name
/// before a wildcard, a longer wildcard before a shorter one), then the longest path prefix.
///
/// One (host, prefix) claim belongs to one service name; several connections of one agent,
/// or of several agents declaring the same service, may serve it.
public struct HTTPRouteTable<ConnectionID: Hashable & Sendable>: Sendable {
    public struct Entry: Equatable, Sendable {
        public var agent: String
        public var service: String
        public var connection: ConnectionID
        public var host: HostPattern
        public var pathPrefix: String
    }

    private struct Claim: Hashable {
        var host: HostPattern
        var pathPrefix: String
    }

    private var byClaim: [Claim: [Entry]] = [:]

    public init() {}

    /// Authorises the http services among `services` against the agent's `allow_hosts` and
    /// records the accepted ones for `connection`, replacing what it declared before.
    public mutating func register(
        connection: ConnectionID, grant: GatewayConfig.AgentGrant, services: [ServiceDeclaration]
    ) -> (accepted: [String], rejected: [ControlMessage.Rejected]) {
        remove(connection: connection)
        let allowed = grant.allowHosts.compactMap { try? HostPattern.parse($0).get() }
        var accepted: [String] = []
        var rejected: [ControlMessage.Rejected] = []
        var claimedHere = Set<Claim>()
        for service in services where service.type == "http" {
            switch authorize(service, grant: grant.name, allowed: allowed, claimedHere: claimedHere) {
            case .success(let claims):
                for c in claims {
                    claimedHere.insert(c)
                    byClaim[c, default: []].append(Entry(
                        agent: grant.name, service: service.name, connection: connection, host: c.host, pathPrefix: c.pathPrefix))
                }
                accepted.append(service.name)
            case .failure(let rejection):
                rejected.append(.init(name: service.name, reason: rejection.reason))
            }
        }
        return (accepted, rejected)
    }

    private func authorize(
        _ s: ServiceDeclaration, grant: String, allowed: [HostPattern], claimedHere: Set<Claim>
    ) -> Result<[Claim], RouteRejection> {
        func no(_ reason: String) -> Result<[Claim], RouteRejection> { .failure(RouteRejection(reason: reason)) }
        guard !s.hosts.isEmpty else { return no("http service needs hosts") }
        let prefix: String
        switch PathPrefix.normalize(s.pathPrefix ?? "/") {
        case .success(let p): prefix = p
        case .failure(let rejection): return .failure(rejection)
        }
        var claims: [Claim] = []
        for text in s.hosts {
            guard case .success(let host) = HostPattern.parse(text) else {
                return no(HostPatternError.invalid(text).description)
            }
            guard allowed.contains(where: { $0.covers(host) }) else {
                return no("host \"\(host)\" is not in allow_hosts of agent \"\(grant)\"")
            }
            let claim = Claim(host: host, pathPrefix: prefix)
            if claimedHere.contains(claim) || claims.contains(claim) {
                return no("host \"\(host)\" with path prefix \"\(prefix)\" is declared twice")
            }
            // Agents may share a claim only under the same service name (replicas).
            if let owner = byClaim[claim]?.first, owner.service != s.name {
                return no("host \"\(host)\" with path prefix \"\(prefix)\" is already served as service \"\(owner.service)\" by agent \"\(owner.agent)\"")
            }
            claims.append(claim)
        }
        return .success(claims)
    }

    public mutating func remove(connection: ConnectionID) {
        for (claim, entries) in byClaim {
            let kept = entries.filter { $0.connection != connection }
            byClaim[claim] = kept.isEmpty ? nil : kept
        }
    }

    /// The entries of the best route for a request, or [] when nothing matches (404).
    public func entries(host rawHost: String, path: String) -> [Entry] {
        let host = HostPattern.normalize(rawHost)
        var best: (Claim, Int, Int)?
        for claim in byClaim.keys where claim.host.matches(host) && PathPrefix.matches(claim.pathPrefix, path) {
            let rank = (claim.host.specificity, claim.pathPrefix.count)
            if best == nil || rank > (best!.1, best!.2) { best = (claim, rank.0, rank.1) }
        }
        return best.map { byClaim[$0.0] ?? [] } ?? []
    }

    public var all: [Entry] { byClaim.values.flatMap { $0 } }
}

/// Path prefixes of HTTP routes: `/` or `/a/b` (no trailing slash, no query), matched on
/// whole segments (`/api` serves `/api`, `/api/` and `/api/x`, not `/apix`: unlike nginx's
/// `location /api` or Traefik's `PathPrefix`, a prefix is a boundary between services).
/// Request paths arrive in `PathNormalizer`'s normal form, so prefixes are kept in it too
/// (`/%7Euser` is declared as `/~user`).
public enum PathPrefix {
    public static func normalize(_ text: String) -> Result<String, RouteRejection> {
        guard text.hasPrefix("/") else { return .failure(RouteRejection(reason: "path_prefix \"\(text)\" must start with /")) }
        guard !text.contains(where: { $0 == "?" || $0 == "#" || $0 == " " }) else {
            return .failure(RouteRejection(reason: "path_prefix \"\(text)\" must be a plain path (no ?, # or spaces)"))
        }
        let normal: String
        switch PathNormalizer.normalize(text) {
        case .success(let n): normal = n
        case .failure(let r): return .failure(RouteRejection(reason: "path_prefix \"\(text)\" is refused as a request path would be: \(r.reason)"))
        }
        var p = Substring(normal)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        return .success(String(p))
    }

    public static func matches(_ prefix: String, _ path: String) -> Bool {
        if prefix == "/" { return true }
        let p = prefix.utf8, t = path.utf8
        guard t.starts(with: p) else { return false }
        guard let next = t.dropFirst(p.count).first else { return true }
        return next == UInt8(ascii: "/") || next == UInt8(ascii: "?")
    }
}

/// Why a declared route was refused, as the agent is told.
public struct RouteRejection: Error, Equatable, Sendable {
    public let reason: String
}

