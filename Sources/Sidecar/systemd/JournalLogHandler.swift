import Logging

#if canImport(Glibc)
import Glibc
#endif

/// swift-log handler writing structured records to journald with `sd_journal_sendv`
/// (DESIGN §5): MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_FILE/LINE/FUNC, MESSAGE_ID for a
/// key event, and every metadata key as a `FASTGW_` field (`service` → `FASTGW_SERVICE`).
struct JournalLogHandler: FastgwLogHandler {
    var metadata: Logger.Metadata = [:]
    let label: String
    /// `gateway` or `agent`, as `FASTGW_ROLE`.
    let role: String
    private let sendv: @convention(c) (UnsafePointer<iovec>?, Int32) -> Int32

    init(label: String, role: String, systemd: Libsystemd.Functions) {
        self.label = label
        self.role = role
        self.sendv = systemd.journalSendv
    }

    func log(event: LogEvent) {
        let merged = merged(event)
        var fields = [
            "MESSAGE=\(Self.escapingControls(event.message.description))",
            "PRIORITY=\(Self.priority(event.level))",
            "SYSLOG_IDENTIFIER=fastgw",
            "CODE_FILE=\(event.file)",
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=\(event.function)",
            "FASTGW_ROLE=\(role)",
        ]
        if case .string(let name)? = merged[KeyEvent.metadataKey], let key = KeyEvent(rawValue: name) {
            fields.append("MESSAGE_ID=\(key.messageID)")
        }
        for (key, value) in merged {
            fields.append("\(Self.fieldName(key))=\(Self.escapingControls("\(value)"))")
        }
        send(fields)
    }

    /// syslog priorities: trace and debug are 7 (debug), critical is 2 (crit).
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// Journal field names are upper-case letters, digits and `_`.
    static func fieldName(_ key: String) -> String {
        let body = key.uppercased().unicodeScalars.map { c -> Character in
            ("A"..."Z").contains(c) || ("0"..."9").contains(c) ? Character(c) : "_"
        }
        return "FASTGW_" + String(body)
    }

    /// One `iovec` per field, all pointing into one buffer (values are escaped, but the
    /// journal would take newlines too).
    private func send(_ fields: [String]) {
        var buffer: [UInt8] = []
        var ranges: [Range<Int>] = []
        for field in fields {
            let start = buffer.count
            buffer.append(contentsOf: field.utf8)
            ranges.append(start..<buffer.count)
        }
        buffer.withUnsafeMutableBytes { raw in
            let vectors = ranges.map { iovec(iov_base: raw.baseAddress! + $0.lowerBound, iov_len: $0.count) }
            _ = sendv(vectors, Int32(vectors.count))
        }
    }

    /// Whether stderr is connected to the journal: `JOURNAL_STREAM` names its device and inode.
    static var stderrIsJournal: Bool {
        guard let value = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }
}
