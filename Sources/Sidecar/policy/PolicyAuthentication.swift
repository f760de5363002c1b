import NIOCore
import Protocol

/// What the authenticating policies said about one request: let it through (with the
/// fields a forward-auth service named for the upstream), or the refusal to answer with.
struct AuthVerdict: Sendable {
    var decision: PolicyDecision = .allow
    /// Lowercased names of the client's fields to drop from the upstream request: every
    /// `forward_auth_headers` name of a policy that allowed, whether its answer had the field
    /// or not, so a client cannot send its own `X-Auth-Request-User`.
    var removed: Set<String> = []
    /// The answers' fields of those names, to add in their place.
    var added: [HeaderField] = []

    /// Applies the allowing answers to the request stream's fields.
    func upstreamFields(_ fields: [HeaderField]) -> [HeaderField] {
        guard !removed.isEmpty else { return fields }
        return fields.filter { !removed.contains($0.name) } + added
    }
}

extension PolicyEnforcer {
    /// Asks the policies of `cells` that authenticate (`basic_auth`, `forward_auth`), in
    /// order, after the address rules and rates passed and the request has a route; the
    /// first that does not allow decides. Each is asked with its current rules (a policy of
    /// the same name in the configuration now in force). Nil when none of them authenticates: the request
    /// goes on at once. The future completes on `loop` and never fails.
    /// `client`: the request's client (`requestClient`), whom X-Forwarded-For names to a
    /// forward-auth service and whose in-flight checks are capped.
    func authenticate(
        _ request: PublicRequest, scheme: String, cells: [PolicyCell], client: IPAddress?, on loop: EventLoop
    ) -> EventLoopFuture<AuthVerdict>? {
        let asking = cells.filter(\.policy.authenticates)
        guard !asking.isEmpty else { return nil }
        guard let client else {
            return loop.makeSucceededFuture(AuthVerdict(decision: refused(.deny(policy: asking[0].policy.name), request: true)))
        }
        return next(asking[...], request, scheme: scheme, client: client, verdict: AuthVerdict(), loop)
    }

    private func next(
        _ cells: ArraySlice<PolicyCell>, _ request: PublicRequest, scheme: String, client: IPAddress,
        verdict: AuthVerdict, _ loop: EventLoop
    ) -> EventLoopFuture<AuthVerdict> {
        guard let attached = cells.first else { return loop.makeSucceededFuture(verdict) }
        let rest = cells.dropFirst()
        // Credentials are judged by the configuration in force now, not the one the
        // connection started under: a reload that removes a user from the htpasswd file or
        // changes the forward-auth service applies to open connections too.
        let cell = gateway.settings.policies.cells[attached.policy.name] ?? attached
        let name = cell.policy.name
        let refuse = { @Sendable (d: PolicyDecision) in
            loop.makeSucceededFuture(AuthVerdict(decision: self.refused(d, request: true, client: client)))
        }
        let clientKey = ClientKey(client)
        switch cell.policy.authStep(authorization: request.head.values("Authorization")) {
        case .none:
            return next(rest, request, scheme: scheme, client: client, verdict: verdict, loop)
        case .challenge(let realm):
            return refuse(.challenge(policy: name, realm: realm))
        case .verify(let credentials, let users):
            return gateway.passwords.verifier.verify(credentials, against: users, client: clientKey, policy: name, on: loop).flatMap { outcome in
                switch outcome {
                case .accepted:
                    return self.next(rest, request, scheme: scheme, client: client, verdict: verdict, loop)
                case .rejected:
                    return refuse(.challenge(policy: name, realm: cell.policy.basicAuth?.realm ?? BasicAuthRule.defaultRealm))
                case .busy:
                    return refuse(.authUnavailable(policy: name, status: 503, reason: "too many password checks in flight"))
                }
            }
        case .ask(let rule):
            guard let service = cell.forwardAuth else {
                return refuse(.authUnavailable(policy: name, status: 503, reason: "forward auth is not set up"))
            }
            let original = ForwardAuthOriginal(
                method: request.method, uri: request.path, host: request.authority, scheme: scheme, client: client,
                fields: request.head.fields.map { HeaderField($0.name, $0.value) })
            return service.check(original, client: clientKey, on: loop).flatMap { answer in
                switch answer {
                case .allow(let fields):
                    var verdict = verdict
                    let names = Set(rule.copy.map { $0.asciiLowercased() })
                    // A later policy's answer replaces an earlier one's field of the same name.
                    verdict.added.removeAll { names.contains($0.name) }
                    verdict.removed.formUnion(names)
                    verdict.added += fields.map { HeaderField($0.name.asciiLowercased(), $0.value) }
                    return self.next(rest, request, scheme: scheme, client: client, verdict: verdict, loop)
                case .respond(let status, let fields, let body):
                    return refuse(.authAnswer(policy: name, status: status, fields: fields, body: body))
                case .fail(let status, let reason):
                    return refuse(.authUnavailable(policy: name, status: status, reason: reason))
                }
            }
        }
    }
}
