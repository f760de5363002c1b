import Protocol

/// `fastgwctl policies`: each configured policy, its rules, where it is attached, its
/// counters since start, and how many clients its rate table holds; then, for the policies
/// with `bandwidth`, how often streams waited and how many bytes waited (since the policy
/// was last changed).
struct PolicyReport {
    let context: GatewayContext

    func render(json: Bool) -> String {
        let settings = context.settings
        let config = settings.config
        let attached = settings.policies.attachments(config: config)
        let counts = context.stats.policies.all
        if json {
            let list: [JSON] = config.policies.map { p in
                let c = counts[p.name] ?? PolicyCounters.Counts()
                return Self.withBandwidth(gates(p), [
                    "name": .string(p.name), "rules": .string(Self.rules(p)),
                    "attached": .array((attached[p.name] ?? []).map(JSON.string)),
                    "allowed": .number(Double(c.allowed)), "denied": .number(Double(c.denied)),
                    "limited": .number(Double(c.limited)), "challenged": .number(Double(c.challenged)),
                    "auth_errors": .number(Double(c.authErrors)),
                    "clients": .number(Double(settings.policies.cells[p.name]?.trackedClients ?? 0)),
                ])
            }
            return JSON.object(["policies": .array(list)]).serialized() + "\n"
        }
        var table = TextTable(["POLICY", "RULES", "ATTACHED", "ALLOWED", "DENIED", "LIMITED", "CHALLENGED", "AUTH_ERRORS", "CLIENTS"])
        for p in config.policies {
            let c = counts[p.name] ?? PolicyCounters.Counts()
            table.add([
                p.name, Self.rules(p), (attached[p.name] ?? []).joined(separator: ",").nonEmpty ?? "-",
                "\(c.allowed)", "\(c.denied)", "\(c.limited)", "\(c.challenged)", "\(c.authErrors)", "\(settings.policies.cells[p.name]?.trackedClients ?? 0)",
            ])
        }
        return table.render() + bandwidthTable(config)
    }

    /// The policy in one line: `allow=… deny=… rps=50/100 cps=5/10 max_conn=20`.
    static func rules(_ p: AccessPolicy) -> String {
        var parts: [String] = []
        if !p.allow.isEmpty { parts.append("allow=" + p.allow.blocks.map(\.description).joined(separator: ",")) }
        if !p.deny.isEmpty { parts.append("deny=" + p.deny.blocks.map(\.description).joined(separator: ",")) }
        if let b = p.bandwidth { parts.append("bandwidth=\(bytes(b))/s") }
        if let r = p.requests { parts.append("requests=\(Int(r.perSecond))/s burst \(r.burst)") }
        if let r = p.connections { parts.append("connections=\(Int(r.perSecond))/s burst \(r.burst)") }
        if let m = p.maxConnectionsPerClient { parts.append("max_connections_per_client=\(m)") }
        if let b = p.basicAuth { parts.append("basic_auth=\(b.users?.count ?? 0) users") }
        if let f = p.forwardAuth { parts.append("forward_auth=\(f.target.authority)\(f.target.path)") }
        return parts.joined(separator: " ")
    }
}

extension PolicyReport {
    private func gates(_ p: AccessPolicy) -> BandwidthGates? {
        context.settings.policies.cells[p.name]?.bandwidth
    }

    /// A policy's JSON object, with `throttled` and `delayed_bytes` when it sets `bandwidth`.
    private static func withBandwidth(_ gates: BandwidthGates?, _ fields: [String: JSON]) -> JSON {
        var fields = fields
        if let gates {
            fields["throttled"] = .number(Double(gates.throttled.value))
            fields["delayed_bytes"] = .number(Double(gates.delayedBytes.value))
        }
        return .object(fields)
    }

    /// The policies with `bandwidth`, if any: the cap, the waits, the bytes that waited, and
    /// the services holding buckets.
    private func bandwidthTable(_ config: GatewayConfig) -> String {
        var table = TextTable(["POLICY", "BANDWIDTH", "THROTTLED", "DELAYED", "SERVICES"])
        for p in config.policies {
            guard let g = gates(p) else { continue }
            // DELAYED is a running count of bytes: always in bytes, not in whichever unit divides it.
            table.add([p.name, "\(Self.bytes(g.rate))/s", "\(g.throttled.value)", "\(g.delayedBytes.value)", "\(g.services)"])
        }
        return config.policies.contains { gates($0) != nil } ? "\n" + table.render() : ""
    }

    /// `10MiB`, `500KiB`, `1536` — the largest unit that divides `n` evenly, as the config reads.
    static func bytes(_ n: Int) -> String {
        for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] where n > 0 && n % (1 << shift) == 0 {
            return "\(n >> shift)\(unit)"
        }
        return "\(n)"
    }
}

private extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
