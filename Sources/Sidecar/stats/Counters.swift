import NIOConcurrencyHelpers
import Protocol
import Synchronization

/// A lock-free counter, cheap enough to bump on every socket read.
final class Counter: Sendable {
    private let v = Atomic<Int>(0)

    func add(_ n: Int = 1) {
        v.wrappingAdd(n, ordering: .relaxed)
    }

    func subtract(_ n: Int = 1) {
        v.wrappingSubtract(n, ordering: .relaxed)
    }

    var value: Int { v.load(ordering: .relaxed) }
}

/// Counts by a label (a reason, a status); touched on failures only, so a lock is fine.
final class LabeledCounters: Sendable {
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    func add(_ label: String, _ n: Int = 1) {
        counts.withLockedValue { $0[label, default: 0] += n }
    }

    var snapshot: [String: Int] { counts.withLockedValue { $0 } }
}

/// Traffic of one service. `bytesIn` flows from public clients towards the upstream,
/// `bytesOut` back; gateway and agent count the same direction the same way.
final class ServiceCounters: NamedCounters {
    let bytesIn = Counter()
    let bytesOut = Counter()
    let connectionsActive = Counter()
    let connectionsTotal = Counter()
    /// HTTP services: responses by status class (`2xx` …).
    let responses = LabeledCounters()
    /// Gateway: from the request (HTTP) or the accept (TCP) until the stream to the agent is
    /// open (HTTP: its HEADERS are on their way, after routing and authentication) or
    /// answered (TCP: the agent connected the upstream).
    let streamOpen = LatencyHistogram()
    /// Gateway, HTTP: from the request until the response head arrives from the agent.
    let firstByte = LatencyHistogram()
}

/// A group of counters one name (a service, a policy) owns.
protocol NamedCounters: AnyObject, Sendable {
    init()
}

/// Counters by name, created on first use and kept for the life of the process so that
/// counters never go backwards across reloads.
final class CountersByName<Value: NamedCounters>: Sendable {
    private let byName = NIOLockedValueBox<[String: Value]>([:])

    func counters(for name: String) -> Value {
        byName.withLockedValue { all in
            if let c = all[name] { return c }
            let c = Value()
            all[name] = c
            return c
        }
    }

    var all: [String: Value] { byName.withLockedValue { $0 } }
}

/// Per-service counters.
final class ServiceCounterSet: Sendable {
    private let named = CountersByName<ServiceCounters>()

    func counters(for service: String) -> ServiceCounters { named.counters(for: service) }

    var all: [String: ServiceCounters] { named.all }

    /// Adds the per-service families to a report.
    func report(into r: inout StatsReport) {
        let all = self.all
        let opened = all.mapValues(\.streamOpen.snapshot).filter { $0.value.count > 0 }
        if !opened.isEmpty {
            r.add("service_stream_open_seconds", histogram: "Gateway: time from a request (HTTP) or an accept (TCP) until its stream to the agent was open (HTTP) or answered by the agent after its upstream connect (TCP).",
                  by: "service", opened)
        }
        let first = all.mapValues(\.firstByte.snapshot).filter { $0.value.count > 0 }
        if !first.isEmpty {
            r.add("service_first_byte_seconds", histogram: "Gateway, HTTP: time from a request until the response head arrived from the agent.",
                  by: "service", first)
        }
        r.add("service_bytes_in_total", .counter, "Bytes from public clients delivered towards the service's upstream.",
              by: "service", all.mapValues(\.bytesIn.value))
        r.add("service_bytes_out_total", .counter, "Bytes from the service's upstream delivered towards public clients.",
              by: "service", all.mapValues(\.bytesOut.value))
        r.add("service_connections_active", .gauge, "Open connections of the service.",
              by: "service", all.mapValues(\.connectionsActive.value))
        r.add("service_connections_total", .counter, "Connections (HTTP: requests) of the service since start.",
              by: "service", all.mapValues(\.connectionsTotal.value))
        var classes: [String: Int] = [:]
        for (name, c) in all {
            for (cls, n) in c.responses.snapshot { classes["\(name):\(cls)"] = n }
        }
        if !classes.isEmpty {
            r.add("service_http_responses_total", .counter, "HTTP responses of the service, by service:status-class.",
                  by: "route", classes)
        }
    }
}

/// Counts a bridged socket's bytes into its service's counters. On the gateway the socket is
/// the public client; on the agent it is the upstream, so the directions swap.
struct ByteMeter: Sendable {
    let counters: ServiceCounters
    let socketIsClient: Bool

    func fromSocket(_ n: Int) {
        (socketIsClient ? counters.bytesIn : counters.bytesOut).add(n)
    }

    func toSocket(_ n: Int) {
        (socketIsClient ? counters.bytesOut : counters.bytesIn).add(n)
    }
}

