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

    /// `text` with control characters written as escapes (`\t`, `\n`, `\r`, `\x00`,
    /// `\u{85}`): messages and values often carry what a client sent (a request line, a
    /// Host), and raw control bytes would forge lines or drive a terminal reading the log.
    /// Both handlers pass every message and value through here.
    static func escapingControls(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for c in text.unicodeScalars {
            switch c {
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case _ where c.value < 0x80 && isControl(c):
                out += "\\x" + (c.value < 0x10 ? "0" : "") + String(c.value, radix: 16)
            case _ where isControl(c):
                out += "\\u{" + String(c.value, radix: 16) + "}"
            default:
                out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// C0, DEL and C1 (U+0080–U+009F: 0x9B is a terminal's CSI).
    private static func isControl(_ c: Unicode.Scalar) -> Bool {
        c.value < 0x20 || (0x7F...0x9F).contains(c.value)
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
        var text = "level=\(event.level.rawValue) msg=\(Self.quote(Self.escapingControls(event.message.description)))"
        let merged = merged(event)
        for key in merged.keys.sorted() {
            text += " \(key)=\(Self.quote(Self.escapingControls("\(merged[key]!)")))"
        }
        text += "\n"
        // One write(2) per line keeps lines whole when several threads log at once.
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    /// Quotes a value that needs it; control characters are already escaped.
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
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
}
