/// A snapshot of a daemon's counters and gauges, rendered for `stats` as text, JSON or the
/// Prometheus text exposition format. The daemons fill it; rendering is pure.
public struct StatsReport: Equatable, Sendable {
    public var role: ControlRole
    public private(set) var metrics: [Metric] = []

    public init(role: ControlRole) {
        self.role = role
    }

    public struct Metric: Equatable, Sendable {
        public enum Kind: String, Sendable { case counter, gauge }
        /// Without the `fastgw_` prefix, e.g. `streams_active`.
        public var name: String
        public var help: String
        public var kind: Kind
        /// The label that tells samples apart (`service`, `reason`); nil for a single value.
        public var label: String?
        public var samples: [Sample]
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
            if m.label == nil {
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
            if m.label == nil {
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
