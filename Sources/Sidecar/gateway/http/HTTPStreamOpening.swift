import NIOCore
import Protocol

/// Opens the request stream of one exchange on the chosen agent connection (on that
/// connection's loop), trying another connection when the first turned out to be draining.
struct HTTPStreamOpening: Sendable {
    /// Connections found draining between the pick and the stream's opening are skipped;
    /// after this many the client gets 503.
    static let maxAttempts = 4

    let gateway: GatewayContext
    let exchange: LoopBoundRef<HTTPExchange>
    let headers: @Sendable (_ service: String) -> [HeaderField]
    let endStream: Bool
    /// The request passed agent policies: a retry stays with the agent whose policies were
    /// checked (another agent's were not).
    let pinsAgent: Bool
    let host: String
    let path: String
    let loop: EventLoop

    func open(_ route: GatewayRegistry.Route, attempt: Int = 1, excluding: Set<GatewayRegistry.ConnectionID> = []) {
        route.tunnel.run { connection in
            let registry = gateway.registry
            // Draining since the pick, or at the agent's stream limit: try another connection.
            if !connection.takesNewStreams {
                registry.streamEnded(route.connection)
                if connection.isDraining { registry.markDraining(route.connection) }
                let skip = excluding.union([route.connection])
                let agent = pinsAgent ? route.agent : nil
                if attempt < Self.maxAttempts,
                   case .route(let next) = registry.pick(host: host, path: path, preferring: loop, excluding: skip, agent: agent) {
                    open(next, attempt: attempt + 1, excluding: skip)
                } else {
                    exchange.run { $0.owner?.exchangeFailed($0, status: 503, reason: "no live agent serves this route") }
                }
                return
            }
            start(route, on: connection)
        }
    }

    private func start(_ route: GatewayRegistry.Route, on connection: TunnelConnection) {
        let stats = gateway.stats
        let registry = gateway.registry
        let link = HTTPExchange.Link(connection: connection)
        do {
            link.streamID = try connection.openStream(headers: headers(route.service), endStream: endStream, handler: link)
        } catch {
            registry.streamEnded(route.connection)
            gateway.events.record(.streamOpenFailed, ["service": "\(route.service)", "error": "\(error)"])
            exchange.run { $0.owner?.exchangeFailed($0, status: 502, reason: "the tunnel to the agent failed") }
            return
        }
        // No flush of its own: the connection sends at the end of this loop tick (or before
        // it reads, see TunnelConnection.receive), so the HEADERS of every request read in
        // the same tick share one TLS record and one write.
        stats.streamsActive.add()
        stats.streamsTotal.add()
        link.onClosed = { _ in
            registry.streamEnded(route.connection)
            stats.streamsActive.subtract()
        }
        link.attach(exchange)
        let linkRef = link.ref
        let service = stats.services.counters(for: route.service)
        exchange.run { ex in
            service.streamOpen.observe(since: ex.started)
            ex.route = route
            ex.attach(linkRef)
            ex.owner?.exchangeAttached(ex)
        }
    }
}
