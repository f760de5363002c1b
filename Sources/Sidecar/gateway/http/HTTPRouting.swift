import NIOCore
import Protocol

extension HTTPExchange {
    /// Where the request goes, or the status and reason the client gets instead. `policy`
    /// (the connection's) is asked before routing about the listener's and the host's and
    /// path's policies, so a refused client learns nothing of what serves the host, and
    /// after routing about the serving agent's.
    /// A policy's refusal is also noted for the access record (`policyDecision`).
    func routing(
        gateway: GatewayContext, tls: PublicTLSSession?, loop: EventLoop, policy: PolicyEnforcer?
    ) -> Result<GatewayRegistry.Route, HTTPRefusal> {
        let result = pickRoute(gateway: gateway, tls: tls, loop: loop, policy: policy)
        if case .failure(let refusal) = result, let decision = refusal.decision {
            policyDecision = "\(decision.label):\(decision.policy ?? "")"
        }
        return result
    }

    private func pickRoute(
        gateway: GatewayContext, tls: PublicTLSSession?, loop: EventLoop, policy: PolicyEnforcer?
    ) -> Result<GatewayRegistry.Route, HTTPRefusal> {
        let request = self.request
        let host = HostPattern.normalize(request.authority)
        let (decision, checked) = policy?.admitRequest(host: host, path: request.path) ?? (.allow, [])
        if let refusal = decision.httpRefusal { return .failure(refusal) }
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
            if let refusal = policy?.admitRequest(agent: route.agent, after: checked).httpRefusal {
                gateway.registry.streamEnded(route.connection)
                return .failure(refusal)
            }
            pace(policy?.bandwidth(after: checked, agent: route.agent, service: route.service), loop: loop)
            return .success(route)
        }
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
            headers: { service in
                request.tunnelHeaders(scheme: scheme, hop: hop, service: service, requestID: requestID) + addressFields
            },
            endStream: request.framing == .none && request.upgrade == nil, host: request.authority, path: request.path, loop: loop
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
    /// The access policy's answer, when a policy refused (for the access record).
    var decision: PolicyDecision?
    init(_ status: Int, _ reason: String) {
        self.status = status
        self.reason = reason
    }
}
