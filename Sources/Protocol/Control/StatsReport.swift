/// A snapshot of a daemon's counters and gauges, rendered for `stats` as text, JSON or the
/// Prometheus text exposition format. The daemons fill it; rendering is pure.
public struct StatsReport: Equatable, Sendable {
    public var role: ControlRole
    public private(set) var metrics: [Metric] = []

    public init(role: ControlRole) {
        self.role = role
    }

    public struct Metric: Equatable, Sendable {
        public enum Kind: String, Sendable { case counter, gauge, histogram }
        /// Without the `fastgw_` prefix, e.g. `streams_active`.
        public var name: String
        public var help: String
        public var kind: Kind
        /// The label that tells samples apart (`service`, `reason`); nil for a single value.
        public var label: String?
        public var samples: [Sample]
        /// A histogram family's values by label value (`samples` is empty then).
        public var histograms: [(String, HistogramSnapshot)] = []

        public static func == (a: Metric, b: Metric) -> Bool {
            a.name == b.name && a.help == b.help && a.kind == b.kind && a.label == b.label && a.samples == b.samples
                && a.histograms.map(\.0) == b.histograms.map(\.0) && a.histograms.map(\.1) == b.histograms.map(\.1)
        }
    }

    public struct Sample: Equatable, Sendable {
        public var labelValue: String?
        public var value: Double
    }

    public mutating func add(_ name: String, _ kind: Metric.Kind, _ help: String, _ value: Double) {
        metrics.append(Metric(name: name, help: help, kind: kind, label: nil, samples: [Sample(labelValue: nil, value: value)]))
    }

    public mutating func add(_ name: String, _ kind: Metric.Kind, _ help: String, _ value: Int) {
        add(name, kind, help, Double(value))
    }

    /// A labelled family; samples are sorted by label value so output is stable.
    public mutating func add(_ name: String, _ kind: Metric.Kind, _ help: String, by label: String, _ values: [String: Int]) {
        let samples = values.keys.sorted().map { Sample(labelValue: $0, value: Double(values[$0]!)) }
        metrics.append(Metric(name: name, help: help, kind: kind, label: label, samples: samples))
    }

    /// A labelled histogram family (Prometheus `_bucket`, `_sum`, `_count`), by label value.
    public mutating func add(_ name: String, histogram help: String, by label: String, _ values: [String: HistogramSnapshot]) {
        var m = Metric(name: name, help: help, kind: .histogram, label: label, samples: [])
        m.histograms = values.keys.sorted().map { ($0, values[$0]!) }
        metrics.append(m)
    }

    public func value(_ name: String, _ labelValue: String? = nil) -> Double? {
        metrics.first { $0.name == name }?.samples.first { $0.labelValue == labelValue }?.value
    }

    // MARK: rendering

    public func render(_ format: OutputFormat) -> String {
        switch format {
        case .text: return text()
        case .json: return json().serialized() + "\n"
        case .prometheus: return prometheus()
        }
    }

    public func text() -> String {
        var table = TextTable(["METRIC", "VALUE"])
        for m in metrics {
            if m.kind == .histogram {
                for (v, h) in m.histograms {
                    table.add(["\(m.name)[\(v)]", "count \(h.count), mean \(Self.milliseconds(h.count == 0 ? 0 : h.sum / Double(h.count)))"])
                }
            } else if m.label == nil {
                table.add([m.name, Self.number(m.samples.first?.value ?? 0)])
            } else {
                for s in m.samples { table.add(["\(m.name)[\(s.labelValue ?? "")]", Self.number(s.value)]) }
            }
        }
        return table.render()
    }

    /// `{"role": …, "<metric>": value, "<family>": {"<label value>": value}}`.
    public func json() -> JSON {
        var o: [String: JSON] = ["role": .string(role.rawValue)]
        for m in metrics {
            if m.kind == .histogram {
                var family: [String: JSON] = [:]
                for (v, h) in m.histograms {
                    family[v] = .object([
                        "count": .number(Double(h.count)), "sum": .number(h.sum),
                        "buckets": .object(Dictionary(uniqueKeysWithValues: zip(
                            LatencyBuckets.bounds.map { Self.number($0) } + ["+Inf"], h.cumulative.map { JSON.number(Double($0)) }))),
                    ])
                }
                o[m.name] = .object(family)
            } else if m.label == nil {
                o[m.name] = .number(m.samples.first?.value ?? 0)
            } else {
                var family: [String: JSON] = [:]
                for s in m.samples { family[s.labelValue ?? ""] = .number(s.value) }
                o[m.name] = .object(family)
            }
        }
        return .object(o)
    }

    public func prometheus() -> String {
        var out = ""
        for m in metrics {
            let name = "fastgw_\(m.name)"
            out += "# HELP \(name) \(m.help)\n# TYPE \(name) \(m.kind.rawValue)\n"
            for (v, h) in m.histograms {
                let label = "\(m.label ?? "service")=\"\(Self.escapeLabel(v))\""
                for (bound, n) in zip(LatencyBuckets.bounds.map { Self.number($0) } + ["+Inf"], h.cumulative) {
                    out += "\(name)_bucket{\(label),le=\"\(bound)\"} \(n)\n"
                }
                out += "\(name)_sum{\(label)} \(Self.number(h.sum))\n\(name)_count{\(label)} \(h.count)\n"
            }
            for s in m.samples {
                if let label = m.label, let v = s.labelValue {
                    out += "\(name){\(label)=\"\(Self.escapeLabel(v))\"} \(Self.number(s.value))\n"
                } else {
                    out += "\(name) \(Self.number(s.value))\n"
                }
            }
        }
        return out
    }

    static func number(_ d: Double) -> String {
        if d.rounded() == d, abs(d) < 9.0e15 { return String(Int(d)) }
        return String(d)
    }

    static func milliseconds(_ seconds: Double) -> String {
        "\(Int((seconds * 1000).rounded())) ms"
    }

    static func escapeLabel(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}
