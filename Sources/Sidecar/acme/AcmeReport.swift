import Protocol

/// `fastgwctl certificates` and the ACME metrics, from the manager's snapshot.
struct AcmeReport {
    let snapshot: AcmeManager.Snapshot

    init(_ snapshot: AcmeManager.Snapshot) {
        self.snapshot = snapshot
    }

    /// Expiry by `acme:NAME`, beside the certificate files' in
    /// `fastgw_certificate_expiry_timestamp_seconds` (so one alert covers both).
    var expiries: [String: Int] {
        var out: [String: Int] = [:]
        for e in snapshot.entries { if let t = e.notAfter { out["acme:\(e.name)"] = t } }
        return out
    }

    func addMetrics(to r: inout StatsReport) {
        let entries = snapshot.entries
        r.add("acme_next_renewal_timestamp_seconds", .gauge,
              "When the gateway next orders each ACME certificate (a retry after a failure included), by certificate name.",
              by: "certificate", Dictionary(entries.map { ($0.name, $0.nextAttempt) }, uniquingKeysWith: min))
        r.add("acme_last_failure_timestamp_seconds", .gauge,
              "When the last order for each ACME certificate failed (absent: none failed since the last success).",
              by: "certificate", Dictionary(entries.compactMap { e in e.lastError == nil ? nil : e.lastFailure.map { (e.name, $0) } }, uniquingKeysWith: max))
        r.add("acme_orders_total", .counter, "ACME orders since start, by result.",
              by: "result", ["issued": snapshot.issued, "failed": snapshot.failed])
    }

    func render(json: Bool) -> String {
        let entries = snapshot.entries
        if json {
            let list: [JSON] = entries.map { e in
                .object([
                    "name": .string(e.name), "hosts": .array(e.hosts.map(JSON.string)),
                    "issuer": e.issuer.map(JSON.string) ?? .null,
                    "not_after": e.notAfter.map { .number(Double($0)) } ?? .null,
                    "next_renewal": .number(Double(e.nextAttempt)),
                    "failures": .number(Double(e.failures)),
                    "last_error": e.lastError.map(JSON.string) ?? .null,
                ])
            }
            return JSON.object(["certificates": .array(list), "issued": .number(Double(snapshot.issued)),
                                "failed": .number(Double(snapshot.failed))]).serialized() + "\n"
        }
        if entries.isEmpty { return "no ACME certificates ([acme] not configured, or no host needs one)\n" }
        var table = TextTable(["HOSTS", "ISSUER", "EXPIRES", "NEXT RENEWAL", "LAST ERROR"])
        for e in entries {
            table.add([
                e.hosts.joined(separator: ","), e.issuer ?? "-", e.notAfter.map(Self.utc) ?? "not issued yet",
                Self.utc(e.nextAttempt), e.lastError.map { "\($0.prefix(200))" } ?? "-",
            ])
        }
        return table.render()
    }

    /// `2026-11-28 01:02:03Z`, without Foundation.
    static func utc(_ t: Int) -> String {
        let days = t >= 0 ? t / 86400 : (t - 86399) / 86400
        let secs = t - days * 86400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(y)-\(two(m))-\(two(d)) \(two(secs / 3600)):\(two(secs % 3600 / 60)):\(two(secs % 60))Z"
    }
}
