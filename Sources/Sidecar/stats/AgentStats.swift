import NIOCore
import Protocol

/// The agent's counters (`stats`).
final class AgentStats: Sendable {
    let started = NIODeadline.now()
    let services = ServiceCounterSet()
    /// udp services: flows, datagrams, drops.
    let udp = UDPCounterSet()
    let tunnelConnectionsActive = Counter()
    let tunnelConnectionsTotal = Counter()
    /// Dial attempts after the first one of each connection slot.
    let reconnects = Counter()
    /// Connections whose HTTP/2 session sent a GOAWAY of its own and were replaced.
    let tunnelReplacements = Counter()
    /// Tunnel connection attempts that failed, by reason (unreachable, tls, refused_401 …).
    let dialFailures = LabeledCounters()
    let streamsActive = Counter()
    let streamsTotal = Counter()
    /// Streams the agent could not connect to an upstream, by reason.
    let connectFailures = LabeledCounters()
    /// Heap handed back to the kernel after many streams ended (MemoryTrimmer).
    let memoryTrims = Counter()
    let reloadsOK = Counter()
    let reloadsFailed = Counter()

    var uptime: TimeAmount { NIODeadline.now() - started }

    func report(draining: Bool) -> StatsReport {
        var r = StatsReport(role: .agent)
        r.add("uptime_seconds", .gauge, "Seconds since the agent started.", Double(uptime.nanoseconds / 1_000_000) / 1000)
        r.add("draining", .gauge, "1 while the agent drains.", draining ? 1 : 0)
        r.add("tunnel_connections_active", .gauge, "Live tunnel connections to gateways.", tunnelConnectionsActive.value)
        r.add("tunnel_connections_total", .counter, "Tunnel connections established since start.", tunnelConnectionsTotal.value)
        r.add("reconnects_total", .counter, "Dial attempts after a failure or a closed connection.", reconnects.value)
        r.add("tunnel_replacements_total", .counter, "Tunnel connections replaced after their HTTP/2 session refused the gateway.",
              tunnelReplacements.value)
        r.add("dial_failures_total", .counter, "Failed tunnel connection attempts, by reason.", by: "reason", dialFailures.snapshot)
        r.add("streams_active", .gauge, "Open streams connected to upstreams.", streamsActive.value)
        r.add("streams_total", .counter, "Streams the gateways opened since start.", streamsTotal.value)
        r.add("connect_failures_total", .counter, "Streams not connected to an upstream, by reason.",
              by: "reason", connectFailures.snapshot)
        r.add("reloads_total", .counter, "Configuration reloads, by result.", by: "result",
              ["ok": reloadsOK.value, "failed": reloadsFailed.value])
        r.add("memory_trims_total", .counter, "Times freed heap was handed back to the kernel after many streams ended.",
              memoryTrims.value)
        services.report(into: &r)
        udp.report(into: &r)
        return r
    }
}
