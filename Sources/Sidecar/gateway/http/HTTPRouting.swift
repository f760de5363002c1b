import NIOCore
import Protocol

extension HTTPExchange {
    /// Where the request goes, or the status and reason the client gets instead. `policy`
    /// (the connection's) is asked before routing about the listener's and the host's and
    /// path's policies, so a refused client learns nothing of what serves the host, and
    /// after routing about the serving agent's.
    /// A policy's refusal is also noted for the access record (`policyDecision`).
    /// `hop`: where the request came from; a trusted proxy's request is judged by policies
    /// as the client it names.
    func routing(
        gateway: GatewayContext, tls: PublicTLSSession?, loop: EventLoop, policy: PolicyEnforcer?, hop: ForwardedFields.Hop
    ) -> Result<GatewayRegistry.Route, HTTPRefusal> {
        requestClient = policy?.requestClient(request.head, hop: hop)
        let result = pickRoute(gateway: gateway, tls: tls, loop: loop, policy: policy)
        if case .failure(let refusal) = result {
            if let decision = refusal.decision {
                policyDecision = "\(decision.label):\(decision.policy ?? "")"
            } else {
                // Refused for another reason (no route, 413, 421): the policies checked let it
                // pass, except those that authenticate, which never judged its credentials.
                policy?.admitted(policyCells.filter { !$0.policy.authenticates })
            }
        }
        return result
    }

    private func pickRoute(
        gateway: GatewayContext, tls: PublicTLSSession?, loop: EventLoop, policy: PolicyEnforcer?
    ) -> Result<GatewayRegistry.Route, HTTPRefusal> {
        let request = self.request
        let host = HostPattern.normalize(request.authority)
        let (decision, checked) = policy?.admitRequest(host: host, path: request.path, client: requestClient) ?? (.allow, [])
        if let refusal = decision.httpRefusal { return .failure(refusal) }
        policyCells = checked
        if let limit = gateway.settings.config.http.maxBodySize, case .contentLength(let n) = request.framing, n > Int64(limit) {
            return .failure(HTTPRefusal(413, "request body of \(n) bytes is over the limit of \(limit) bytes"))
        }
        if let tls, let reason = tls.misdirected(host: request.authority) {
            return .failure(HTTPRefusal(421, reason))
        }
        switch gateway.registry.pick(host: request.authority, path: request.path, preferring: loop) {
        case .noRoute:
            return .failure(HTTPRefusal(404, "no service is published for host \"\(host)\" and path \"\(request.path)\""))
        case .noLiveAgent(let service):
            let what = service.map { "service \"\($0)\"" } ?? "host \"\(host)\""
            return .failure(HTTPRefusal(503, "no agent serving \(what) is connected"))
        case .route(let route):
            if let policy {
                let (decision, passed) = policy.admitRequest(agent: route.agent, after: checked, client: requestClient)
                if let refusal = decision.httpRefusal {
                    gateway.registry.streamEnded(route.connection)
                    return .failure(refusal)
                }
                policyCells = passed
                pinsAgent = policy.set.pinsAgent
            }
            pace(policy?.bandwidth(after: checked, agent: route.agent, service: route.service), loop: loop)
            return .success(route)
        }
    }

    /// After routing: the request's authenticating policies (`basic_auth`, `forward_auth`)
    /// have their say, which may take a password check or a subrequest. `done` runs on
    /// `loop` with nil (go on: open the stream) or the refusal to answer; the owner must
    /// check that it still waits for this exchange (the client may have left meanwhile) and
    /// call `abandon(_:)` when it does not open the stream. Without authenticating policies
    /// `done` runs at once; with them always on a later turn of the loop, even when the
    /// answer was ready (a 401 for missing credentials): the owner answering a refusal
    /// starts on the next pipelined request, and doing that inside this call would nest one
    /// stack frame per pipelined request.
    func authenticate(
        _ route: GatewayRegistry.Route, gateway: GatewayContext, policy: PolicyEnforcer?, scheme: String, loop: EventLoop,
        done: @escaping (HTTPRefusal?) -> Void
    ) {
        let cells = policyCells
        guard let policy, let checking = policy.authenticate(request, scheme: scheme, cells: cells, client: requestClient, on: loop) else {
            policy?.admitted(cells)
            return done(nil)
        }
        checking.assumeIsolated().whenSuccess { verdict in
            loop.assumeIsolated().execute { self.authenticated(verdict, route, gateway: gateway, policy: policy, cells: cells, done: done) }
        }
    }

    private func authenticated(
        _ verdict: AuthVerdict, _ route: GatewayRegistry.Route, gateway: GatewayContext, policy: PolicyEnforcer, cells: [PolicyCell],
        done: (HTTPRefusal?) -> Void
    ) {
        if let refusal = verdict.decision.httpRefusal {
            gateway.registry.streamEnded(route.connection)
            policyDecision = "\(verdict.decision.label):\(verdict.decision.policy ?? "")"
            return done(refusal)
        }
        policy.admitted(cells)
        authVerdict = verdict
        done(nil)
    }

    /// The owner gave up on a routed exchange before opening its stream (the client left
    /// while it was authenticated): its place on the agent connection is given back.
    func abandon(_ route: GatewayRegistry.Route, gateway: GatewayContext) {
        gateway.registry.streamEnded(route.connection)
    }

    /// Opens the request stream on `route`; the owner hears `exchangeAttached` (or
    /// `exchangeFailed`), possibly before this returns: its state must be set up first.
    /// `addressFields`: the public connection's `TunnelAddressFields`.
    func open(
        _ route: GatewayRegistry.Route, gateway: GatewayContext, scheme: String, hop: ForwardedFields.Hop,
        addressFields connectionFields: [HeaderField], loop: EventLoop
    ) {
        self.route = route
        let request = self.request
        let requestID = self.requestID
        if hop.trusted, let peer = hop.peer {
            // A trusted proxy speaks for its client: the log names that client.
            let trusted = gateway.settings.config.trustedProxies
            forwardedClient = "\(ForwardedFields.client(head: request.head, peer: peer.address, trusted: trusted))"
        }
        // The agent's PROXY header and X-Real-IP name the same client as the log.
        let addressFields = forwardedClient.map { TunnelAddressFields.replacingClient(connectionFields, with: $0) } ?? connectionFields
        HTTPStreamOpening(
            gateway: gateway, exchange: LoopBoundRef(self, eventLoop: loop),
            headers: { [authVerdict] service in
                let fields = request.tunnelHeaders(scheme: scheme, hop: hop, service: service, requestID: requestID) + addressFields
                return authVerdict?.upstreamFields(fields) ?? fields
            },
            endStream: request.framing == .none && request.upgrade == nil, pinsAgent: pinsAgent,
            host: request.authority, path: request.path, loop: loop
        ).open(route)
    }
}

extension ForwardedFields.Hop {
    /// The hop of a public connection with `addresses` (after any PROXY header): trusted
    /// when its client is a trusted proxy that a PROXY header, if any, named.
    init(gateway: GatewayContext, addresses: ConnectionAddresses) {
        self.init(client: addresses.client, named: addresses.clientNamed, trustedProxies: gateway.settings.config.trustedProxies)
    }
}

/// The gateway's own answer to a request it does not forward.
struct HTTPRefusal: Error {
    let status: Int
    let reason: String
    /// Fields the error page carries besides its own (a 429's `retry-after`, `ratelimit`).
    var fields: [HeaderField] = []
    /// The body instead of the error page's text (a forward-auth service's own refusal).
    var body: [UInt8]?
    /// The access policy's answer, when a policy refused (for the access record).
    var decision: PolicyDecision?
    init(_ status: Int, _ reason: String) {
        self.status = status
        self.reason = reason
    }
}
