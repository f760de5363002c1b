import Protocol

/// One udp service's traffic, counted the same way on the gateway and the agent: `in` is
/// from public clients towards the upstream, `out` back.
final class UDPServiceCounters: NamedCounters {
    let flowsActive = Counter()
    let flowsTotal = Counter()
    /// Flows ended early to make room in a full flow table.
    let flowsEvicted = Counter()
    let datagramsIn = Counter()
    let datagramsOut = Counter()
    let bytesIn = Counter()
    let bytesOut = Counter()
    /// Datagrams dropped, by reason (`client_flow_limit`, `refused`, `tunnel_window`, `no_agent` …).
    let drops = LabeledCounters()

    func counted(toUpstream: Bool, bytes: Int) {
        (toUpstream ? datagramsIn : datagramsOut).add()
        (toUpstream ? bytesIn : bytesOut).add(bytes)
    }
}

/// Per-service UDP counters and their `stats` families.
final class UDPCounterSet: Sendable {
    private let named = CountersByName<UDPServiceCounters>()

    func counters(for service: String) -> UDPServiceCounters { named.counters(for: service) }

    func report(into r: inout StatsReport) {
        let all = named.all
        guard !all.isEmpty else { return }
        r.add("udp_flows_active", .gauge, "Open UDP flows (one per client address) of the service.",
              by: "service", all.mapValues(\.flowsActive.value))
        r.add("udp_flows_total", .counter, "UDP flows of the service since start.", by: "service", all.mapValues(\.flowsTotal.value))
        r.add("udp_flows_evicted_total", .counter, "UDP flows ended to make room for new clients in a full flow table.",
              by: "service", all.mapValues(\.flowsEvicted.value))
        r.add("udp_datagrams_in", .counter, "Datagrams from public clients delivered towards the service's upstream.",
              by: "service", all.mapValues(\.datagramsIn.value))
        r.add("udp_datagrams_out", .counter, "Datagrams from the service's upstream delivered towards public clients.",
              by: "service", all.mapValues(\.datagramsOut.value))
        r.add("udp_bytes_in", .counter, "UDP payload bytes towards the service's upstream.", by: "service", all.mapValues(\.bytesIn.value))
        r.add("udp_bytes_out", .counter, "UDP payload bytes towards public clients.", by: "service", all.mapValues(\.bytesOut.value))
        var drops: [String: Int] = [:]
        for (name, c) in all {
            for (reason, n) in c.drops.snapshot { drops["\(name):\(reason)"] = n }
        }
        r.add("udp_drops_total", .counter, "Datagrams dropped, by service:reason.", by: "drop", drops)
    }
}
