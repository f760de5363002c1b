import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What fastgw's two log handlers (logfmt, journal) share: the process-wide level and the
/// logger's own metadata under the event's.
protocol FastgwLogHandler: LogHandler {
    var metadata: Logger.Metadata { get set }
}

extension FastgwLogHandler {
    /// Process-wide, so that `log-level` reaches every logger already handed out.
    var logLevel: Logger.Level {
        get { RuntimeLogLevel.current }
        set { RuntimeLogLevel.current = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func merged(_ event: LogEvent) -> Logger.Metadata {
        event.metadata.map { metadata.merging($0) { _, new in new } } ?? metadata
    }
}

/// swift-log handler writing one logfmt line per event to stderr:
/// `level=info msg="agent connected" agent=office-nas carrier=h2`.
struct LogfmtHandler: FastgwLogHandler {
    var metadata: Logger.Metadata = [:]
    let label: String

    init(label: String) {
        self.label = label
    }

    func log(event: LogEvent) {
        var text = "level=\(event.level.rawValue) msg=\(Self.quote(event.message.description))"
        let merged = merged(event)
        for key in merged.keys.sorted() {
            text += " \(key)=\(Self.quote("\(merged[key]!)"))"
        }
        text += "\n"
        // One write(2) per line keeps lines whole when several threads log at once.
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    static func quote(_ s: String) -> String {
        let plain = !s.isEmpty && s.unicodeScalars.allSatisfy { c in
            c.value > 0x20 && c.value < 0x7f && c != "\"" && c != "=" && c != "\\"
        }
        if plain { return s }
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
}
