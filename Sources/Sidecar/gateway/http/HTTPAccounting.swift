import Logging
import NIOCore
import Protocol

/// Stats and the log line of each public HTTP request, whichever protocol carried it.
struct HTTPAccounting {
    let gateway: GatewayContext
    let listener: String
    let client: String

    /// The exchange is over: `outcome` says why when it did not end with a relayed response.
    func finished(_ ex: HTTPExchange, outcome: String?) {
        let status = ex.status ?? 0
        let stats = gateway.stats
        stats.httpResponses.add("\(status / 100)xx")
        if let service = ex.route?.service {
            stats.services.counters(for: service).responses.add("\(status / 100)xx")
        }
        if ex.route == nil || outcome != nil, status >= 400 { stats.httpErrors.add(String(status)) }
        let isError = status >= 500 || status == 0
        let access = gateway.settings.config.accessLog
        let level: Logger.Level = isError ? .warning : (access ? .info : .debug)
        guard gateway.logger.logLevel <= level else { return }
        var metadata: Logger.Metadata = [
            "request_id": "\(ex.requestID)", "client": "\(client)", "listener": "\(listener)",
            "method": "\(ex.request.method)", "host": "\(ex.request.authority)", "path": "\(ex.request.path)",
            "version": "\(ex.request.version)", "status": "\(status)", "bytes_in": "\(ex.bytesIn)",
            "bytes_out": "\(ex.bytesOut)", "duration_ms": "\((NIODeadline.now() - ex.started).nanoseconds / 1_000_000)",
        ]
        if let route = ex.route {
            metadata["service"] = "\(route.service)"
            metadata["agent"] = "\(route.agent)"
        }
        if let outcome { metadata["reason"] = "\(outcome)" }
        gateway.logger.log(level: level, "http request", metadata: .event(.requestCompleted, metadata))
    }

    /// A request refused before it was understood (malformed, too large a head).
    func refused(status: Int, reason: String, requestID: String, request: String) {
        gateway.stats.httpRequestsTotal.add()
        gateway.stats.httpResponses.add("\(status / 100)xx")
        gateway.stats.httpErrors.add(String(status))
        gateway.logger.info("http request refused", metadata: [
            "request_id": "\(requestID)", "client": "\(client)", "listener": "\(listener)",
            "status": "\(status)", "reason": "\(reason)", "request": "\(request)",
        ])
    }
}

extension HTTPExchange {
    /// Where the request goes, or the status and reason the client gets instead.
    func routing(gateway: GatewayContext, tls: PublicTLSSession?, loop: EventLoop) -> Result<GatewayRegistry.Route, HTTPRefusal> {
        let request = self.request
        if let limit = gateway.settings.config.http.maxBodySize, case .contentLength(let n) = request.framing, n > Int64(limit) {
            return .failure(HTTPRefusal(413, "request body of \(n) bytes is over the limit of \(limit) bytes"))
        }
        if let tls, let reason = tls.misdirected(host: request.authority) {
            return .failure(HTTPRefusal(421, reason))
        }
        let host = HostPattern.normalize(request.authority)
        switch gateway.registry.pick(host: request.authority, path: request.path, preferring: loop) {
        case .noRoute:
            return .failure(HTTPRefusal(404, "no service is published for host \"\(host)\" and path \"\(request.path)\""))
        case .noLiveAgent(let service):
            let what = service.map { "service \"\($0)\"" } ?? "host \"\(host)\""
            return .failure(HTTPRefusal(503, "no agent serving \(what) is connected"))
        case .route(let route):
            return .success(route)
        }
    }

    /// Opens the request stream on `route`; the owner hears `exchangeAttached` (or
    /// `exchangeFailed`), possibly before this returns: its state must be set up first.
    func open(_ route: GatewayRegistry.Route, gateway: GatewayContext, scheme: String, client: String, loop: EventLoop) {
        self.route = route
        let request = self.request
        let requestID = self.requestID
        HTTPStreamOpening(
            gateway: gateway, exchange: LoopBoundRef(self, eventLoop: loop),
            headers: { service in request.tunnelHeaders(scheme: scheme, client: client, service: service, requestID: requestID) },
            endStream: request.framing == .none && request.upgrade == nil, host: request.authority, path: request.path, loop: loop
        ).open(route)
    }
}

/// The gateway's own answer to a request it does not forward.
struct HTTPRefusal: Error {
    let status: Int
    let reason: String
    init(_ status: Int, _ reason: String) {
        self.status = status
        self.reason = reason
    }
}
