/// Reading `[[policy]]` tables and `policy = ...` attachments (GatewayConfig.parse).
extension AccessPolicy {
    /// One `[[policy]]`; nil when it has errors (already reported with their lines).
    static func read(_ t: inout TableReader, seen: inout Set<String>, readFile: (String) throws -> String) -> AccessPolicy? {
        let name = t.entryName(kind: "policy", seen: &seen)
        var policy = AccessPolicy(name: name)
        var ok = true
        for key in ["allow", "deny"] {
            for text in t.strings(key) ?? [] {
                switch CIDR.parse(text) {
                case .success(let block):
                    if key == "allow" { policy.allow.insert(block) } else { policy.deny.insert(block) }
                case .failure(let e):
                    t.error(key, "\(key): \(e)")
                    ok = false
                }
            }
        }
        let burst = t.int("burst", range: 1...1_000_000)
        if t.has("burst") && burst == nil { ok = false }
        policy.requests = readRate(&t, "requests_per_second", burst: burst, ok: &ok)
        policy.connections = readRate(&t, "connections_per_second", burst: burst, ok: &ok)
        if burst != nil && !t.has("requests_per_second") && !t.has("connections_per_second") {
            t.error("burst", "burst needs requests_per_second or connections_per_second")
            ok = false
        }
        policy.bandwidth = t.size("bandwidth", range: AccessPolicy.bandwidthRange)
        if t.has("bandwidth") && policy.bandwidth == nil { ok = false }
        policy.maxConnectionsPerClient = t.int("max_connections_per_client", range: 1...1_000_000)
        if t.has("max_connections_per_client") && policy.maxConnectionsPerClient == nil { ok = false }
        if !readAuth(&t, into: &policy, readFile: readFile) { ok = false }
        t.rejectUnknownKeys()
        if ok && policy.isEmpty {
            t.error("name", "policy \"\(name)\" has no rule: give it allow, deny, a rate, max_connections_per_client, bandwidth, basic_auth or forward_auth")
            ok = false
        }
        return ok ? policy : nil
    }

    /// `key` (events a second, a whole number ≥ 1) with the table's `burst` (default: the rate).
    private static func readRate(_ t: inout TableReader, _ key: String, burst: Int?, ok: inout Bool) -> RateLimit? {
        guard t.has(key) else { return nil }
        guard let rate = t.int(key, range: 1...1_000_000) else {
            ok = false
            return nil
        }
        return RateLimit(perSecond: Double(rate), burst: burst ?? rate)
    }
}

extension TableReader {
    /// `policy = "name"` or `policy = ["a", "b"]` (applied in order); duplicates refused.
    /// The names are checked against the `[[policy]]` tables later (`checkPolicyNames`).
    mutating func policyNames() -> [String] {
        guard has("policy") else { return [] }
        var names: [String]
        if table["policy"]?.string != nil {
            names = [string("policy")!]
        } else {
            guard let list = strings("policy", expected: "policy must be a string or an array of strings") else { return [] }
            names = list
        }
        if names.isEmpty { error("policy", "policy must name at least one [[policy]]") }
        if Set(names).count != names.count { error("policy", "policy names one [[policy]] twice") }
        return names
    }
}
