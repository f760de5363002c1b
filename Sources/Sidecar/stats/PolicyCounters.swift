import NIOConcurrencyHelpers
import Protocol

/// Per-policy answers (allowed, denied, limited), kept for the life of the process like the
/// service counters, so they never go backwards across reloads.
final class PolicyCounters: Sendable {
    struct Counts: Equatable, Sendable {
        var allowed = 0
        var denied = 0
        var limited = 0
    }

    private let byName = NIOLockedValueBox<[String: Counts]>([:])

    func counted(_ policy: String, _ decision: PolicyDecision) {
        byName.withLockedValue { all in
            switch decision {
            case .allow: all[policy, default: Counts()].allowed += 1
            case .deny: all[policy, default: Counts()].denied += 1
            case .limit: all[policy, default: Counts()].limited += 1
            }
        }
    }

    var all: [String: Counts] { byName.withLockedValue { $0 } }

    func report(into r: inout StatsReport) {
        let all = self.all
        r.add("policy_allowed_total", .counter, "Requests (HTTP) and connections (TCP) an access policy let through, by policy.",
              by: "policy", all.mapValues(\.allowed))
        r.add("policy_denied_total", .counter, "Requests and connections refused by a policy's address rules (403), by policy.",
              by: "policy", all.mapValues(\.denied))
        r.add("policy_limited_total", .counter, "Requests and connections refused by a policy's rate or connection limits (429), by policy.",
              by: "policy", all.mapValues(\.limited))
    }
}
