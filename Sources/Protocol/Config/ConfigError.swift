/// One problem found in a configuration file, located as precisely as the source allows.
public struct ConfigDiagnostic: Error, Equatable, Sendable, CustomStringConvertible {
    public let file: String
    /// 1-based line, or nil when the problem belongs to no single line (a missing section).
    public let line: Int?
    public let message: String

    public init(file: String, line: Int?, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `file:line: message`, the shape editors and `nginx -t` users expect.
    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

/// Every problem in one file; validation does not stop at the first so an operator can fix all at once.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public let diagnostics: [ConfigDiagnostic]

    public init(_ diagnostics: [ConfigDiagnostic]) {
        self.diagnostics = diagnostics
    }

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }

    /// The first problem, for one-line answers (control socket `ERR 422 …`).
    public var firstLine: String { diagnostics.first?.description ?? "invalid configuration" }
}
