import Logging
import NIOCore
import NIOPosix
import Protocol

/// The agent's side of one tunnel connection (HTTP/2 server): answers the control stream
/// with its services, connects every CONNECT stream to the service's upstream, and carries
/// every request stream to its http service's upstream.
final class AgentTunnel: TunnelConnectionDelegate {
    private let agent: AgentContext
    private let slot: SlotKey
    private var control: ControlStream?
    /// Keep-alive upstream connections of http services, on this connection's loop.
    private var pool: UpstreamPool?
    /// The h2c upstream connections of this tunnel connection.
    private var h2Pool: H2UpstreamPool?

    init(agent: AgentContext, slot: SlotKey) {
        self.agent = agent
        self.slot = slot
    }

    /// Declares the configured services (again after a reload) on the control stream.
    func registerServices() {
        control?.send(.register(agent.settings.config.services.map(ServiceDeclaration.init)))
    }

    func tunnelMeasured(_ connection: TunnelConnection, rtt: TimeAmount) {
        agent.slots.update(slot) { $0.rtt = rtt }
    }

    func tunnelEstablished(_ connection: TunnelConnection) {}

    func tunnel(_ connection: TunnelConnection, incomingStream id: Int32, headers: [HeaderField], endStream: Bool)
        -> TunnelStreamHandler? {
        switch (headers[":method"], headers[":path"]) {
        case ("POST", ControlStreamHeaders.path):
            return openControl(connection, id: id)
        case ("CONNECT", _) where ConnectUDP.isFlow(headers):
            guard let service = service(headers[":authority"], kind: .udp, connection, id: id) else { return nil }
            return AgentUDPFlow.open(service, agent: agent, connection: connection, id: id, headers: headers) { [weak self, unowned connection] status, reason in
                self?.refuse(connection, id: id, status: status, reason: reason)
            }
        case ("CONNECT", .some) where headers[":protocol"] != nil && headers["fastgw-service"] != nil:
            // An upgrade (WebSocket) to an http service: extended CONNECT, RFC 8441.
            return openHTTP(connection, id: id, headers: headers, endStream: endStream)
        case ("CONNECT", _):
            return openTCP(connection, id: id, headers: headers)
        case (.some, .some) where headers["fastgw-service"] != nil:
            return openHTTP(connection, id: id, headers: headers, endStream: endStream)
        default:
            refuse(connection, id: id, status: 405, reason: "unsupported stream")
            return nil
        }
    }

    private func openControl(_ connection: TunnelConnection, id: Int32) -> TunnelStreamHandler {
        let control = ControlStream(connection: connection)
        control.streamID = id
        connection.idleExempt.insert(id)
        let logger = agent.logger
        let slots = agent.slots
        let slot = self.slot
        control.onMessage = { message in
            switch message {
            case .registered(let accepted, let rejected):
                slots.update(slot) { s in
                    s.accepted = accepted
                    s.rejected = rejected
                }
                logger.info("services registered", metadata: ["accepted": "\(accepted.joined(separator: ","))"])
                for r in rejected {
                    logger.error("gateway rejected service", metadata: .event(.registrationRejected, ["service": "\(r.name)", "reason": "\(r.reason)"]))
                }
            case .draining:
                slots.update(slot) { $0.gatewayDraining = true }
                logger.notice("gateway is draining")
            case .register:
                break
            }
        }
        control.onFailure = { [unowned connection] reason in connection.close(reason: "control stream: \(reason)") }
        connection.respond(stream: id, headers: [HeaderField(":status", "200")], endStream: false)
        self.control = control
        registerServices()
        return control
    }

    /// The configured service a new stream names, counted; nil after answering 404 when the
    /// agent has no service of that name and kind.
    private func service(
        _ name: String?, kind: AgentConfig.Service.Kind, _ connection: TunnelConnection, id: Int32
    ) -> AgentConfig.Service? {
        agent.stats.streamsTotal.add()
        let name = name ?? ""
        // A CONNECT stream may name a tcp service or a network one (a visitor's destination).
        let kinds: [AgentConfig.Service.Kind] = kind == .tcp ? [.tcp, .network] : [kind]
        guard let service = agent.settings.config.service(named: name), kinds.contains(service.kind) else {
            agent.stats.connectFailures.add("unknown_service")
            let what = kind == .tcp ? "service" : "\(kind.rawValue) service"
            refuse(connection, id: id, status: 404, reason: "unknown \(what) \"\(name)\"")
            return nil
        }
        return service
    }

    private func openTCP(_ connection: TunnelConnection, id: Int32, headers: [HeaderField]) -> TunnelStreamHandler? {
        let stats = agent.stats
        guard let service = service(headers[":authority"], kind: .tcp, connection, id: id) else { return nil }
        let link = StreamSocketBridge.Link(connection: connection)
        link.streamID = id
        let loop = connection.eventLoop!
        let linkRef = link.ref
        let bridge = StreamSocketBridge(link: linkRef)
        let boundBridge = NIOLoopBound(bridge, eventLoop: loop)
        let client = headers["fastgw-client"] ?? "?"
        let logger = agent.logger
        let events = agent.events
        let started = NIODeadline.now()
        let access = agent.settings.config.accessLog
        let counters = stats.services.counters(for: service.name)
        bridge.meter = ByteMeter(counters: counters, socketIsClient: false)
        let slots = agent.slots
        let slot = self.slot
        bridge.onClose = { summary in
            stats.streamsActive.subtract()
            counters.connectionsActive.subtract()
            slots.update(slot) { $0.streams -= 1 }
            // The access record: journald rate-limits, so only when `[log] access` asks for it.
            let level: Logger.Level = access ? .info : .debug
            logger.log(level: level, "upstream connection closed", metadata: .event(.connectionClosed, [
                "service": "\(service.name)", "client": "\(client)", "stream": "\(id)",
                "bytes_in": "\(summary.bytesToSocket)", "bytes_out": "\(summary.bytesFromSocket)",
                "duration_ms": "\((NIODeadline.now() - started).nanoseconds / 1_000_000)",
                "status": "\(summary.abortReason.map { "aborted: \($0)" } ?? "ok")",
            ]))
        }

        // A network service first resolves and checks the destination the visitor named.
        let destination: EventLoopFuture<SocketAddress?> = service.kind == .network
            ? NetworkTarget.resolve(headers["fastgw-target"], service: service, on: loop).map(\.first)
            : loop.makeSucceededFuture(nil)
        let connecting = destination.flatMap { address in
            UpstreamConnector.connect(
                service, on: loop, handler: boundBridge, allowHalfClosure: true,
                preamble: UpstreamConnector.proxyHeader(service, fields: headers), address: address)
        }
        let me = NIOLoopBound(self, eventLoop: loop)
        let conn = NIOLoopBound(connection, eventLoop: loop)
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                boundBridge.value.adopt(channel)
                stats.streamsActive.add()
                counters.connectionsActive.add()
                counters.connectionsTotal.add()
                slots.update(slot) { $0.streams += 1 }
                link.attach(LoopBoundRef(boundBridge.value, eventLoop: loop))
                conn.value.respond(stream: id, headers: [HeaderField(":status", "200")], endStream: false)
            case .failure(let error):
                let upstream = service.kind == .network
                    ? UpstreamAddress.tcp((try? HostPort.parse(headers["fastgw-target"] ?? "").get()) ?? HostPort(host: "?", port: 0))
                    : service.upstream
                let (status, reason) = Self.classify(error, upstream: upstream)
                stats.connectFailures.add(TCPIngress.failureReason(status: String(status)))
                events.record(.upstreamConnectFailed(status: status), [
                    "service": "\(service.name)", "client": "\(client)", "status": "\(status)", "reason": "\(reason)",
                ])
                me.value.refuse(conn.value, id: id, status: status, reason: reason)
            }
        }
        return link
    }

    private func openHTTP(_ connection: TunnelConnection, id: Int32, headers: [HeaderField], endStream: Bool) -> TunnelStreamHandler? {
        guard let service = service(headers["fastgw-service"], kind: .http, connection, id: id) else { return nil }
        let fields = service.forwardedHeaders.apply(to: headers)
        let loop = connection.eventLoop!
        let method = headers[":method"] ?? "?"
        if service.upstreamProtocol == .h2c {
            if headers[":protocol"] != nil {
                refuse(connection, id: id, status: 501, reason: "upgrades need an http1 upstream; service \"\(service.name)\" speaks h2c")
                return nil
            }
            let pool = self.h2Pool ?? H2UpstreamPool(loop: loop)
            self.h2Pool = pool
            let link = H2UpstreamExchange.Link(connection: connection)
            link.streamID = id
            let exchange = H2UpstreamExchange(service: service, fields: fields, endStream: endStream, link: link, pool: pool)
            exchange.onFinish = recordRequest(service: service, method: method, headers: headers)
            exchange.start()
            return link
        }
        let request: UpstreamMessage.Request
        switch UpstreamMessage.request(fields, endStream: endStream) {
        case .success(let r): request = r
        case .failure(let r):
            refuse(connection, id: id, status: 400, reason: r.reason)
            return nil
        }
        let pool = self.pool ?? UpstreamPool(loop: loop)
        self.pool = pool
        let link = UpstreamExchange.Link(connection: connection)
        link.streamID = id
        let exchange = UpstreamExchange(
            service: service, request: request, preamble: UpstreamConnector.proxyHeader(service, fields: headers), link: link, pool: pool)
        exchange.onFinish = recordRequest(service: service, method: request.method, headers: headers)
        exchange.start()
        return link
    }

    /// Counts a request stream as it starts, and returns what records it when it ends.
    private func recordRequest(service: AgentConfig.Service, method: String, headers: [HeaderField])
        -> (_ status: Int, _ bytesIn: Int, _ bytesOut: Int, _ failure: String?) -> Void
    {
        let stats = agent.stats
        let counters = stats.services.counters(for: service.name)
        stats.streamsActive.add()
        counters.connectionsActive.add()
        counters.connectionsTotal.add()
        let slots = agent.slots
        let slot = self.slot
        slots.update(slot) { $0.streams += 1 }
        let logger = agent.logger
        let events = agent.events
        let access = agent.settings.config.accessLog
        let requestID = headers["fastgw-request-id"] ?? "-"
        // The gateway's own field: forwarded_headers may keep X-Forwarded-For from the upstream.
        let client = headers["fastgw-client"] ?? headers["x-forwarded-for"] ?? "?"
        let path = headers[":path"] ?? ""
        let started = NIODeadline.now()
        return { status, bytesIn, bytesOut, failure in
            stats.streamsActive.subtract()
            counters.connectionsActive.subtract()
            counters.bytesIn.add(bytesIn)
            counters.bytesOut.add(bytesOut)
            counters.responses.add("\(status / 100)xx")
            slots.update(slot) { $0.streams -= 1 }
            let level: Logger.Level = access ? .info : .debug
            guard failure != nil || logger.logLevel <= level else { return }
            var metadata: Logger.Metadata = [
                "service": "\(service.name)", "request_id": "\(requestID)", "client": "\(client)",
                "method": "\(method)", "path": "\(path)", "status": "\(status)",
                "bytes_in": "\(bytesIn)", "bytes_out": "\(bytesOut)",
                "duration_ms": "\((NIODeadline.now() - started).nanoseconds / 1_000_000)",
            ]
            if let failure {
                metadata["reason"] = "\(failure)"
                // Failures follow what public clients do (aborts, floods): counted, not one line each.
                events.record(.requestFailed(status: status), metadata)
            }
            guard logger.logLevel <= level else { return }
            logger.log(level: level, "http request", metadata: .event(.requestCompleted, metadata))
        }
    }

    /// 502 for a refused or unreachable upstream, 504 for a connect timeout.
    static func classify(_ error: Error, upstream: UpstreamAddress) -> (Int, String) {
        switch error as? NetworkTarget.Refusal {
        case .malformed(let why): return (400, why)
        case .notAllowed(let why): return (403, why)
        case .unresolvable(let why): return (502, why)
        case nil: break
        }
        if case ChannelError.connectTimeout = error {
            return (504, "upstream \(upstream) did not answer in time")
        }
        if let e = error as? NIOConnectionError, let first = e.connectionErrors.first {
            return (502, "upstream \(upstream): \(Self.describe(first.error))")
        }
        return (502, "upstream \(upstream): \(Self.describe(error))")
    }

    /// `Connection refused` rather than NIO's wrapped description.
    private static func describe(_ error: Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }

    /// Answers with an error status and ends the stream. The gateway resets the stream when
    /// it reads a status other than 200 (an RST from here could overtake the HEADERS).
    private func refuse(_ connection: TunnelConnection, id: Int32, status: Int, reason: String) {
        connection.respond(stream: id, headers: [
            HeaderField(":status", String(status)), HeaderField("fastgw-reason", reason),
        ], endStream: true)
    }

    func tunnelReceivedGoaway(_ connection: TunnelConnection) {
        agent.logger.notice("gateway sent GOAWAY")
    }

    /// Set by the dialer: this connection will take no new stream, so replace it now.
    var onStoppedAccepting: ((UInt32) -> Void)?

    func tunnelStoppedAccepting(_ connection: TunnelConnection, errorCode: UInt32) {
        onStoppedAccepting?(errorCode)
        onStoppedAccepting = nil
    }

    func tunnelClosed(_ connection: TunnelConnection, reason: String) {
        control = nil
        pool?.closeAll()
        pool = nil
        h2Pool?.closeAll()
        h2Pool = nil
    }
}
