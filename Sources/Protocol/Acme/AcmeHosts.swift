/// Which certificates the gateway obtains over ACME: the explicit `[[certificate]] acme = true`
/// entries, then one certificate for every exact host an agent may claim that an https
/// listener would serve and no static certificate covers.
public enum AcmeHosts {
    public struct Plan: Equatable, Sendable {
        /// Each certificate's hosts (its first is the name it goes by).
        public var certificates: [[String]] = []
        /// Hosts left out and why (wildcards), for the log and `fastgw check`.
        public var notes: [String] = []

        public init(certificates: [[String]] = [], notes: [String] = []) {
            self.certificates = certificates
            self.notes = notes
        }
    }

    /// `covered`: the host patterns the static `[[certificate]]`s serve (their `hosts`, or
    /// their DNS names).
    public static func plan(_ config: GatewayConfig, covered: [HostPattern]) -> Plan {
        var plan = Plan()
        guard let acme = config.acme, config.listeners.contains(where: { $0.kind == .https }) else { return plan }
        var taken = Set<String>()
        for hosts in acme.certificates {
            // A name no CA issues for would stay pending (refused in the handshake) forever.
            let issuable = hosts.filter(AcmeHostName.isValid)
            for host in hosts where !AcmeHostName.isValid(host) {
                plan.notes.append("[[certificate]] acme = true: \"\(host)\" gets no ACME certificate (a CA issues only for DNS names with two or more labels and a non-numeric last one)")
            }
            if !issuable.isEmpty { plan.certificates.append(issuable) }
            taken.formUnion(hosts)
        }
        var wildcards = Set<String>()
        for grant in config.agents {
            for text in grant.allowHosts {
                switch HostPattern.parse(text) {
                case .success(.exact(let host)):
                    guard !taken.contains(host), HostPattern.bestMatch(in: covered, for: host) == nil else { continue }
                    taken.insert(host)
                    guard AcmeHostName.isValid(host) else {
                        plan.notes.append("agent \"\(grant.name)\": \(host) gets no ACME certificate (a CA issues only for DNS names with two or more labels and a non-numeric last one): serve it with a [[certificate]] that has cert and key")
                        continue
                    }
                    plan.certificates.append([host])
                case .success(.wildcard(let suffix)):
                    let pattern = "*." + suffix
                    guard wildcards.insert(pattern).inserted,
                        !covered.contains(where: { $0.covers(.wildcard(suffix: suffix)) })
                    else { continue }
                    plan.notes.append("agent \"\(grant.name)\": \(pattern) gets no ACME certificate (wildcards need DNS-01, which fastgw does not do): serve it with a [[certificate]] that has cert and key")
                case .failure:
                    continue
                }
            }
        }
        let hasHTTP = config.listeners.contains { $0.kind == .http }
        // The default (both kinds) needs no warning while one of them is answerable.
        let kinds = acme.challenges.compactMap(AcmeChallengeKind.init(rawValue:))
        let explicit = acme.challenges != AcmeConfig.challengeNames || !kinds.contains { $0.answerable(httpListener: hasHTTP, httpsListener: true) }
        for kind in kinds where explicit && !kind.answerable(httpListener: hasHTTP, httpsListener: true) {
            plan.notes.append("[acme] challenges: \(kind.rawValue) needs a listener with protocol \"http\" (on port 80 for a public CA); it is not used")
        }
        return plan
    }

    /// A file-name-safe name for a certificate's state (its first host; host names are
    /// letters, digits, `-` and `.`, never `..` alone).
    public static func stateName(_ hosts: [String]) -> String {
        hosts.first ?? "unnamed"
    }
}
