import Logging
import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// What every visitor handler needs: the dial side (an `AgentContext` speaking as a visitor,
/// so the agent's dialer, slots and tunnel counters serve it unchanged), the visitor's own
/// configuration (swapped whole by a reload) and its counters.
final class VisitorContext: Sendable {
    let dial: AgentContext
    let stats = VisitorStats()
    /// Failed RFC 1929 logins per local client address (IPv4 /32, IPv6 /64): 5 in 60 s block
    /// the address for 10 s doubling to 10 min, 4,096 addresses remembered (`AuthThrottle`).
    let socksThrottle = NIOLockedValueBox(AuthThrottle())
    private let current: NIOLockedValueBox<VisitorConfig>

    init(config: VisitorConfig, tls: TLSContext, logger: Logger) {
        current = NIOLockedValueBox(config)
        dial = AgentContext(settings: .init(config: config.connection, tls: tls), logger: logger, peer: .visitor) { _, _ in
            VisitorTunnel()
        }
    }

    var config: VisitorConfig {
        get { current.withLockedValue { $0 } }
        set { current.withLockedValue { $0 = newValue } }
    }

    var logger: Logger { dial.logger }
    var isDraining: Bool { dial.isDraining }
}

/// The visitor's own counters, next to the tunnel ones in `AgentStats`.
final class VisitorStats: Sendable {
    /// Per local listener (`forward 127.0.0.1:5432`, `socks5 127.0.0.1:1080`): connections and bytes.
    let listeners = ServiceCounterSet()
    /// Local connections refused, by reason (no_tunnel, not_granted, no_agent, not_allowed, …).
    let refused = LabeledCounters()
    /// SOCKS5 negotiations that failed (timeout, auth, auth_blocked, protocol, too_much_early_data).
    let socksFailures = LabeledCounters()

    func add(to r: inout StatsReport) {
        r.add("local_refused_total", .counter, "Local connections refused, by reason.", by: "reason", refused.snapshot)
        r.add("socks5_failures_total", .counter, "SOCKS5 negotiations that failed, by reason.", by: "reason", socksFailures.snapshot)
        listeners.report(into: &r)
    }
}

/// The visitor's side of a tunnel connection: it opens every stream and serves none.
final class VisitorTunnel: TunnelConnectionDelegate {
    func tunnelEstablished(_ connection: TunnelConnection) {}

    func tunnel(_ connection: TunnelConnection, incomingStream id: Int32, headers: [HeaderField], endStream: Bool)
        -> TunnelStreamHandler? {
        // The gateway is the HTTP/2 server here and cannot open streams; nghttp2 refuses them.
        nil
    }

    func tunnelReceivedGoaway(_ connection: TunnelConnection) {}
    func tunnelClosed(_ connection: TunnelConnection, reason: String) {}
}
