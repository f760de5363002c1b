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
        // The access record at its own level; failures are also counted and logged at most
        // once per interval per status, since a client can cause them at any rate.
        let level: Logger.Level = access ? .info : .debug
        guard isError || gateway.logger.logLevel <= level else { return }
        var metadata: Logger.Metadata = [
            "request_id": "\(ex.requestID)", "client": "\(ex.forwardedClient ?? client)", "listener": "\(listener)",
            "method": "\(ex.request.method)", "host": "\(ex.request.authority)", "path": "\(ex.request.path)",
            "version": "\(ex.request.version)", "status": "\(status)", "bytes_in": "\(ex.bytesIn)",
            "bytes_out": "\(ex.bytesOut)", "duration_ms": "\((NIODeadline.now() - ex.started).nanoseconds / 1_000_000)",
        ]
        if let route = ex.route {
            metadata["service"] = "\(route.service)"
            metadata["agent"] = "\(route.agent)"
        }
        if ex.forwardedClient != nil { metadata["proxy"] = "\(client)" }
        if let outcome { metadata["reason"] = "\(outcome)" }
        if let policy = ex.policyDecision { metadata["policy"] = "\(policy)" }
        if isError { gateway.events.record(.requestFailed(status: status), metadata) }
        guard gateway.logger.logLevel <= level else { return }
        gateway.logger.log(level: level, "http request", metadata: .event(.requestCompleted, metadata))
    }

    /// A request refused before it was understood (malformed, too large a head).
    func refused(status: Int, reason: String, requestID: String, request: String) {
        gateway.stats.httpRequestsTotal.add()
        gateway.stats.httpResponses.add("\(status / 100)xx")
        gateway.stats.httpErrors.add(String(status))
        gateway.events.record(.requestRefused(status: status), [
            "request_id": "\(requestID)", "client": "\(client)", "listener": "\(listener)",
            "status": "\(status)", "reason": "\(reason)", "request": "\(request)",
        ])
    }
}
