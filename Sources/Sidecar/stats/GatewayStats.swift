import NIOCore
import Protocol

/// The gateway's counters (`stats`). Gauges that the registry knows (agents, connections)
/// are read from it when a report is made.
final class GatewayStats: Sendable {
    let started = NIODeadline.now()
    let services = ServiceCounterSet()
    /// udp services: flows, datagrams, drops.
    let udp = UDPCounterSet()
    /// Answers of the access policies (`[[policy]]`), by policy.
    let policies = PolicyCounters()
    let publicConnectionsActive = Counter()
    let publicConnectionsTotal = Counter()
    let streamsActive = Counter()
    let streamsTotal = Counter()
    let agentConnectionsTotal = Counter()
    /// Tunnel handshakes refused, by HTTP status (401, 403, 503 …).
    let handshakesRefused = LabeledCounters()
    /// Tunnel handshakes refused for the client certificate, by reason (`revoked` …).
    let certificatesRefused = LabeledCounters()
    /// Public connections that could not be carried to an upstream, by reason.
    let connectFailures = LabeledCounters()
    let httpRequestsTotal = Counter()
    /// HTTP responses by status class (`2xx` …), relayed or the gateway's own.
    let httpResponses = LabeledCounters()
    /// Responses the gateway wrote itself, by status (404 no route, 503 no agent …).
    let httpErrors = LabeledCounters()
    /// Open connections on the tunnel listener (the tunnel pool of `EdgeAdmission`).
    let tunnelConnectionsOpen = Counter()
    /// Connections refused at accept, by pool and reason (`public_limit_total`,
    /// `tunnel_limit_per_client`, `tunnel_auth_blocked` …).
    let connectionsRefused = LabeledCounters()
    /// TLS handshakes that failed, by listener kind (`tunnel`, `public`).
    let tlsHandshakeFailures = LabeledCounters()
    /// Addresses blocked for failed tunnel authentication.
    let addressesBlocked = Counter()
    /// Times freed heap was handed back to the kernel after connections left.
    let memoryTrims = Counter()
    /// Visitors (`[[visitor]]`): live connections, streams spliced to agents, refusals by reason.
    let visitorConnectionsActive = Counter()
    let visitorStreamsActive = Counter()
    let visitorStreamsTotal = Counter()
    let visitorStreamsRefused = LabeledCounters()
    let reloadsOK = Counter()
    let reloadsFailed = Counter()
    /// Register messages refused whole, by reason (flood, too_many_services).
    let registrationsRefused = LabeledCounters()
    /// HTTP/2 header blocks refused while decoding (over the size or field limit), by side.
    let headerBlocksRefused = LabeledCounters()

    var uptime: TimeAmount { NIODeadline.now() - started }

    func report(agentConnections: Int, agents: Int, draining: Bool) -> StatsReport {
        var r = StatsReport(role: .gateway)
        r.add("uptime_seconds", .gauge, "Seconds since the gateway started.", Double(uptime.nanoseconds / 1_000_000) / 1000)
        r.add("draining", .gauge, "1 while the gateway drains.", draining ? 1 : 0)
        r.add("agents_connected", .gauge, "Agents with at least one live tunnel connection.", agents)
        r.add("agent_connections_active", .gauge, "Live tunnel connections.", agentConnections)
        r.add("agent_connections_total", .counter, "Tunnel connections accepted since start.", agentConnectionsTotal.value)
        r.add("handshakes_refused_total", .counter, "Tunnel handshakes refused, by status.", by: "status", handshakesRefused.snapshot)
        r.add("certificates_refused_total", .counter, "Tunnel handshakes refused for the agent's client certificate, by reason.",
              by: "reason", certificatesRefused.snapshot)
        r.add("registrations_refused_total", .counter, "Agent register messages refused whole, by reason.",
              by: "reason", registrationsRefused.snapshot)
        r.add("header_blocks_refused_total", .counter, "HTTP/2 header blocks over the limits, refused while decoding, by side.",
              by: "side", headerBlocksRefused.snapshot)
        r.add("visitor_connections_active", .gauge, "Live visitor tunnel connections.", visitorConnectionsActive.value)
        r.add("visitor_streams_active", .gauge, "Visitor streams spliced to agents.", visitorStreamsActive.value)
        r.add("visitor_streams_total", .counter, "Visitor streams spliced to agents since start.", visitorStreamsTotal.value)
        r.add("visitor_streams_refused_total", .counter, "Visitor streams refused, by reason.", by: "reason", visitorStreamsRefused.snapshot)
        r.add("connections_active", .gauge, "Open public connections.", publicConnectionsActive.value)
        r.add("connections_total", .counter, "Public connections accepted since start.", publicConnectionsTotal.value)
        r.add("streams_active", .gauge, "Open tunnel streams carrying public connections.", streamsActive.value)
        r.add("streams_total", .counter, "Tunnel streams opened since start.", streamsTotal.value)
        r.add("connect_failures_total", .counter, "Public connections not carried to an upstream, by reason.",
              by: "reason", connectFailures.snapshot)
        r.add("http_requests_total", .counter, "HTTP requests read from public clients.", httpRequestsTotal.value)
        r.add("http_responses_total", .counter, "HTTP responses to public clients, by status class.",
              by: "class", httpResponses.snapshot)
        r.add("http_errors_total", .counter, "HTTP error responses written by the gateway itself, by status.",
              by: "status", httpErrors.snapshot)
        r.add("tunnel_connections_open", .gauge, "Open connections on the tunnel listener, handshaking ones included.", tunnelConnectionsOpen.value)
        r.add("connections_refused_total", .counter, "Connections refused at accept, by pool and reason.",
              by: "reason", connectionsRefused.snapshot)
        r.add("tls_handshake_failures_total", .counter, "Failed TLS handshakes, by listener kind.",
              by: "listener", tlsHandshakeFailures.snapshot)
        r.add("addresses_blocked_total", .counter, "Addresses blocked for failed tunnel authentication.", addressesBlocked.value)
        r.add("memory_trims_total", .counter, "Times freed heap was returned to the kernel after connections left.",
              memoryTrims.value)
        r.add("reloads_total", .counter, "Configuration reloads, by result.", by: "result",
              ["ok": reloadsOK.value, "failed": reloadsFailed.value])
        services.report(into: &r)
        udp.report(into: &r)
        policies.report(into: &r)
        return r
    }
}
