extension EgressRoute {
    /// `proxy` and `proxy_credentials` of an `[agent]` table. `environment` is getenv in the
    /// daemons (read at start and at every reload), a dictionary in tests. Every message
    /// quotes proxy URLs with their password replaced by `***`.
    static func read(
        from t: inout TableReader, environment: (String) -> String?, readFile: (String) throws -> String
    ) -> EgressRoute {
        let credentialsPath = t.path("proxy_credentials")
        guard let value = t.string("proxy") else {
            if credentialsPath != nil { t.error("proxy_credentials", "proxy_credentials needs proxy (the proxy URL, or \"env\")") }
            return EgressRoute()
        }
        var route = EgressRoute(source: .config)
        if value == "env" {
            route = fromEnvironment(&t, environment)
        } else if value.isEmpty {
            t.error("proxy", "proxy is empty; leave the key out to reach the gateways directly")
        } else {
            switch EgressProxy.parse(value) {
            case .success(let p): route.proxy = p
            case .failure(let e):
                let known = value.contains("://") ? "" : " (or \"env\" for HTTPS_PROXY and NO_PROXY)"
                t.error("proxy", "proxy \"\(EgressProxy.redacted(value))\": \(e)\(known)")
            }
        }
        if let credentialsPath, let proxy = route.proxy {
            route.proxy?.credentials = credentials(&t, path: credentialsPath, proxy: proxy, readFile: readFile)
        }
        return route
    }

    /// `proxy = "env"`: no variable set means a direct connection, as for any other program.
    private static func fromEnvironment(_ t: inout TableReader, _ environment: (String) -> String?) -> EgressRoute {
        var route = EgressRoute(source: .environment(variable: nil))
        if let name = proxyVariables.first(where: { environment($0)?.isEmpty == false }), let text = environment(name) {
            route.source = .environment(variable: name)
            switch EgressProxy.parse(text, schemeOptional: true) {
            case .success(let p): route.proxy = p
            case .failure(let e): t.error("proxy", "proxy = \"env\": \(name)=\"\(EgressProxy.redacted(text))\": \(e)")
            }
        }
        if let name = bypassVariables.first(where: { environment($0) != nil }), let text = environment(name) {
            switch NoProxyList.parse(text) {
            case .success(let list): route.bypass = list
            case .failure(let e): t.error("proxy", "proxy = \"env\": \(name): \(e)")
            }
        }
        return route
    }

    /// `proxy_credentials = "/etc/fastgw/proxy.pass"` or `"credential:proxy"`: `user:password`.
    private static func credentials(
        _ t: inout TableReader, path: String, proxy: EgressProxy, readFile: (String) throws -> String
    ) -> ProxyCredentials? {
        if proxy.credentials != nil {
            t.error("proxy_credentials", "the proxy URL already carries user:password; keep the credentials in one place "
                + "(remove them from the URL, which is the safer one, or drop proxy_credentials)")
            return nil
        }
        // `fastgw check` outside the unit cannot see the credential; the daemons refuse that case.
        if Credentials.isUnchecked(path) { return nil }
        let text: String
        do {
            text = try readFile(path)
        } catch {
            let credential = t.paths.references.last { $0.path == path }
            let hint = credential.map { "; \(Credentials.missingHint(name: $0.name))" } ?? ""
            t.error("proxy_credentials", "cannot read proxy_credentials \(path): \(error)\(hint)")
            return nil
        }
        switch ProxyCredentials.parse(file: text) {
        case .success(let c):
            return c
        case .failure(let e):
            t.error("proxy_credentials", "proxy_credentials \(path): \(e)")
            return nil
        }
    }
}
