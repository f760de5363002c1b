/// What `NAME/state` keeps across restarts for one certificate: the failures in a row, when
/// the next order is due, and the directory the certificate beside it came from. Without it a
/// restart would forget a backoff (or a rateLimited answer) and order again at once, and a
/// changed `[acme] directory` would keep serving a certificate from the old CA.
public struct AcmeFailureRecord: Equatable, Sendable {
    /// The `[acme] directory` the chain in the same directory was issued by ("" if unknown).
    public var directory: String
    public var failures: Int
    /// Seconds since the epoch; 0 when nothing failed.
    public var nextAttempt: Int
    public var lastFailure: Int
    public var lastError: String

    public init(directory: String, failures: Int = 0, nextAttempt: Int = 0, lastFailure: Int = 0, lastError: String = "") {
        self.directory = directory
        self.failures = failures
        self.nextAttempt = nextAttempt
        self.lastFailure = lastFailure
        self.lastError = lastError
    }

    /// `key value` lines; the error is one line (newlines replaced), last because it is free text.
    public var text: String {
        let error = lastError.map { $0 == "\n" || $0 == "\r" ? " " : $0 }
        return "directory \(directory)\nfailures \(failures)\nnext_attempt \(nextAttempt)\nlast_failure \(lastFailure)\nlast_error \(String(error))\n"
    }

    /// Nil for anything that is not such a file (then it is ignored: the state is advisory).
    public init?(text: String) {
        var fields: [Substring: Substring] = [:]
        for line in text.split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { fields[line] = ""; continue }
            fields[line[..<space]] = line[line.index(after: space)...]
        }
        guard let directory = fields["directory"], let failures = fields["failures"].flatMap({ Int($0) }),
            let next = fields["next_attempt"].flatMap({ Int($0) }), failures >= 0, failures < 1000 else { return nil }
        self.init(directory: String(directory), failures: failures, nextAttempt: next,
                  lastFailure: fields["last_failure"].flatMap { Int($0) } ?? 0,
                  lastError: String(fields["last_error"] ?? ""))
    }
}
