/// Reading a `[[policy]]`'s authentication keys: `basic_auth` (+ `realm`) and `forward_auth`
/// (+ `forward_auth_headers`, `forward_auth_timeout`).
extension AccessPolicy {
    /// Fills `basicAuth` / `forwardAuth`; false after an error (reported on its line). The
    /// htpasswd file is read here, so `fastgw check` and a reload see its mistakes with the
    /// file's own line numbers, and a reload picks up a changed file.
    static func readAuth(
        _ t: inout TableReader, into policy: inout AccessPolicy, readFile: (String) throws -> String
    ) -> Bool {
        var ok = true
        if t.has("basic_auth") && t.has("forward_auth") {
            t.error("forward_auth", "a policy takes basic_auth or forward_auth, not both; attach two policies to ask for both")
            ok = false
        }
        if let path = t.path("basic_auth") {
            let realm = t.string("realm") ?? BasicAuthRule.defaultRealm
            if let problem = BasicCredentials.realmProblem(realm) {
                t.error("realm", problem)
                ok = false
            }
            switch loadHtpasswd(path, readFile: readFile) {
            case .success(let users):
                policy.basicAuth = BasicAuthRule(path: path, realm: realm, users: users)
            case .failure(let diagnostics):
                t.error("basic_auth", "basic_auth \(path): \(diagnostics.message)")
                t.diagnostics.append(diagnostics.items)
                ok = false
            }
        } else if t.string("realm") != nil {
            t.error("realm", "realm applies to basic_auth")
            ok = false
        }
        if let url = t.string("forward_auth") {
            var rule: ForwardAuthRule?
            switch ForwardAuthTarget.parse(url) {
            case .success(let target): rule = ForwardAuthRule(target: target)
            case .failure(let e):
                t.error("forward_auth", e.reason)
                ok = false
            }
            let copy = t.strings("forward_auth_headers") ?? []
            for name in copy {
                if let problem = ForwardAuthRule.copyProblem(name) {
                    t.error("forward_auth_headers", "forward_auth_headers: \(problem)")
                    ok = false
                }
            }
            if copy.count > ForwardAuthRule.maxCopiedFields {
                t.error("forward_auth_headers", "forward_auth_headers names more than \(ForwardAuthRule.maxCopiedFields) fields")
                ok = false
            }
            if Set(copy.map { $0.asciiLowercased() }).count != copy.count {
                t.error("forward_auth_headers", "forward_auth_headers names one field twice")
                ok = false
            }
            rule?.copy = copy
            if let timeout = t.duration("forward_auth_timeout") {
                if timeout < .milliseconds(100) || timeout > .seconds(60) {
                    t.error("forward_auth_timeout", "forward_auth_timeout must be between 100ms and 60s")
                    ok = false
                }
                rule?.timeout = timeout
            } else if t.has("forward_auth_timeout") {
                ok = false
            }
            policy.forwardAuth = rule
        } else {
            _ = (t.strings("forward_auth_headers"), t.string("forward_auth_timeout"))
            for key in ["forward_auth_headers", "forward_auth_timeout"] where t.has(key) {
                t.error(key, "\(key) applies to forward_auth")
                ok = false
            }
        }
        return ok
    }

    /// The file's entries; nil for a credential `fastgw check` left unchecked.
    private static func loadHtpasswd(
        _ path: String, readFile: (String) throws -> String
    ) -> Result<Htpasswd?, HtpasswdProblem> {
        if Credentials.isUnchecked(path) { return .success(nil) }
        let text: String
        do {
            text = try readFile(path)
        } catch {
            return .failure(HtpasswdProblem(message: "cannot read: \(error)", items: []))
        }
        switch Htpasswd.parse(Array(text.utf8), file: path) {
        case .success(let users):
            if users.count == 0 { return .failure(HtpasswdProblem(message: "has no user entries", items: [])) }
            return .success(users)
        case .failure(let e):
            let n = e.diagnostics.count
            return .failure(HtpasswdProblem(message: "\(n) invalid line\(n == 1 ? "" : "s") (listed below)", items: e.diagnostics))
        }
    }

    private struct HtpasswdProblem: Error {
        let message: String
        let items: [ConfigDiagnostic]
    }
}

extension GatewayConfig {
    /// Agent grants whose policies authenticate and that also grant TCP ports: allowed (the
    /// policy guards the agent's HTTP hosts), but every connection to those ports will be
    /// refused, which `fastgw check` points out.
    public var authenticatedTCPWarnings: [String] {
        agents.compactMap { grant in
            guard !grant.allowPorts.isEmpty,
                  let p = grant.policies.compactMap(policy(named:)).first(where: \.authenticates) else { return nil }
            return "agent \"\(grant.name)\": policy \"\(p.name)\" has \(p.basicAuth != nil ? "basic_auth" : "forward_auth"), "
                + "so every connection to its TCP ports (allow_ports) will be refused: TCP carries no credentials"
        }
    }
}
