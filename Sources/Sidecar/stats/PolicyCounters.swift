import NIOConcurrencyHelpers
import Protocol

/// Per-policy answers (allowed, denied, limited), kept for the life of the process like the
/// service counters, so they never go backwards across reloads. Each policy's `Tally` is
/// looked up once, when a configuration is loaded, and held by its `PolicyCell`: counting an
/// answer is an atomic add, with no lock or name lookup on the request path.
final class PolicyCounters: Sendable {
    struct Counts: Equatable, Sendable {
        var allowed = 0
        var denied = 0
        var limited = 0
        var challenged = 0
        var authErrors = 0
    }

    final class Tally: NamedCounters {
        let allowed = Counter()
        let denied = Counter()
        let limited = Counter()
        let challenged = Counter()
        let authErrors = Counter()

        func counted(_ decision: PolicyDecision) {
            switch decision.label {
            case "allow": allowed.add()
            case "deny": denied.add()
            case "limit": limited.add()
            case "challenge": challenged.add()
            default: authErrors.add()
            }
        }

        var counts: Counts {
            Counts(allowed: allowed.value, denied: denied.value, limited: limited.value,
                   challenged: challenged.value, authErrors: authErrors.value)
        }
    }

    private let named = CountersByName<Tally>()

    /// The tally of `policy`, the same object for the life of the process.
    func tally(for policy: String) -> Tally { named.counters(for: policy) }

    var all: [String: Counts] { named.all.mapValues(\.counts) }

    func report(into r: inout StatsReport) {
        let all = self.all
        r.add("policy_allowed_total", .counter, "Requests (HTTP) and connections (TCP) an access policy let through, by policy.",
              by: "policy", all.mapValues(\.allowed))
        r.add("policy_denied_total", .counter, "Requests and connections refused by a policy's address rules (403), by policy.",
              by: "policy", all.mapValues(\.denied))
        r.add("policy_limited_total", .counter, "Requests and connections refused by a policy's rate or connection limits (429), by policy.",
              by: "policy", all.mapValues(\.limited))
        r.add("policy_challenged_total", .counter,
              "Requests answered 401 or redirected to sign in (basic_auth, or forward_auth's 401/3xx), by policy.",
              by: "policy", all.mapValues(\.challenged))
        r.add("policy_auth_errors_total", .counter,
              "Requests failed closed (502/503) because credentials could not be judged: forward_auth down, slow or answering nonsense, or password checks overloaded; by policy.",
              by: "policy", all.mapValues(\.authErrors))
    }
}
