/// The one-line `STATUS=` each daemon keeps current (DESIGN §5): what an operator reads in
/// `systemctl status`, so it counts what matters at a glance and reads as English.
public enum ServiceStatus {
    public static func gateway(
        agents: Int, tunnelConnections: Int, publicConnections: Int, streams: Int, draining: Bool
    ) -> String {
        let traffic = "\(count(publicConnections, "public connection")), \(count(streams, "stream"))"
        if draining { return "draining: \(traffic) left" }
        return "serving: \(count(agents, "agent")) on \(count(tunnelConnections, "tunnel connection")), \(traffic)"
    }

    /// `connected` of `slots` configured tunnel connections are up.
    public static func agent(connected: Int, slots: Int, streams: Int, draining: Bool) -> String {
        if draining { return "draining: \(count(connected, "tunnel connection")), \(count(streams, "stream")) left" }
        return "serving: \(connected)/\(count(slots, "tunnel connection")), \(count(streams, "stream"))"
    }

    public static func visitor(connected: Int, slots: Int, localConnections: Int, draining: Bool) -> String {
        if draining { return "draining: \(count(connected, "tunnel connection")), \(count(localConnections, "local connection")) left" }
        return "serving: \(connected)/\(count(slots, "tunnel connection")), \(count(localConnections, "local connection"))"
    }

    static func count(_ n: Int, _ noun: String) -> String {
        n == 1 ? "1 \(noun)" : "\(n) \(noun)s"
    }
}
