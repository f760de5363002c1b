/// Secrets handed over by systemd (systemd.exec(5) "Credentials"): a path value written
/// `credential:NAME` names the file NAME in the directory systemd passes in
/// `$CREDENTIALS_DIRECTORY`. systemd reads the source (`LoadCredential=NAME:/etc/fastgw/…`) as
/// root when the unit starts, so the secret stays root-only on disk and the fastgw user never
/// opens it; the copy lives as long as the unit, so a reload reads it again.
public enum Credentials {
    public static let prefix = "credential:"
    public static let variable = "CREDENTIALS_DIRECTORY"
    /// A credential is a file in that directory: a file name, at most NAME_MAX bytes.
    public static let maxNameLength = 255

    /// The NAME of a `credential:NAME` value; nil for an ordinary path.
    public static func name(in value: String) -> String? {
        value.hasPrefix(prefix) ? String(value.dropFirst(prefix.count)) : nil
    }

    /// Why `name` cannot name a credential, nil when it can: systemd's own rule (a valid file
    /// name), and no control characters, which would only garble the messages that quote it.
    public static func problem(withName name: String) -> String? {
        if name.isEmpty { return "the credential name is empty" }
        if name == "." || name == ".." { return "\"\(name)\" is not a credential name" }
        if name.utf8.count > maxNameLength { return "the credential name is longer than \(maxNameLength) bytes" }
        if name.contains("/") { return "a credential name is a file name in $\(variable) and cannot contain \"/\"" }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            return "the credential name contains a control character"
        }
        return nil
    }

    /// Whether a resolved path is a credential left unchecked (`ConfigPath.unchecked`): only
    /// that case keeps the prefix, every other value becomes a file path.
    public static func isUnchecked(_ resolvedPath: String) -> Bool {
        resolvedPath.hasPrefix(prefix)
    }

    /// What to do about a credential that is not in the directory: the unit lacks it.
    public static func missingHint(name: String) -> String {
        "the unit needs LoadCredential=\(name):/path/to/file (or SetCredential=\(name):…)"
    }
}

/// Where `credential:NAME` values are looked up, and what an unset `$CREDENTIALS_DIRECTORY` means.
public struct CredentialsLookup: Equatable, Sendable {
    public enum WhenUnset: Equatable, Sendable {
        /// The daemons: an error, since they cannot run without the secret.
        case refuse
        /// `fastgw check`, which usually runs outside the unit: the value is reported as not
        /// checked and the rest of the file is validated.
        case skip
    }

    /// `$CREDENTIALS_DIRECTORY`; nil when unset or empty.
    public var directory: String?
    public var whenUnset: WhenUnset

    public init(directory: String?, whenUnset: WhenUnset = .refuse) {
        self.directory = directory?.isEmpty == false ? directory : nil
        self.whenUnset = whenUnset
    }

    /// Reads the variable through `environment` (getenv in the daemon, a dictionary in tests).
    public init(environment: (String) -> String?, whenUnset: WhenUnset) {
        self.init(directory: environment(Credentials.variable), whenUnset: whenUnset)
    }

    /// No directory, refused: what the parsers assume unless told otherwise.
    public static let none = CredentialsLookup(directory: nil)
}

/// One `credential:NAME` value in a config file, for the checks that need the filesystem
/// (is the file there?) and for `fastgw check`'s notes.
public struct CredentialReference: Equatable, Sendable {
    /// The key as messages name it, e.g. `key` or `agent "office": token_file`.
    public var key: String
    public var line: Int?
    public var name: String
    /// The file in `$CREDENTIALS_DIRECTORY`; nil when the variable is unset and it was skipped.
    public var path: String?

    public init(key: String, line: Int?, name: String, path: String?) {
        self.key = key
        self.line = line
        self.name = name
        self.path = path
    }
}

/// What a path value in a config file names.
public enum ConfigPath: Equatable, Sendable {
    /// A file; a relative path is made absolute against the config file's directory.
    case file(String)
    /// The credential `name`, at `path` in `$CREDENTIALS_DIRECTORY`.
    case credential(name: String, path: String)
    /// The credential `name`, not looked up: the variable is unset and the caller skips it.
    case unchecked(name: String)
    /// A value that names nothing, and why (for the key's line).
    case invalid(String)

    public static func resolve(_ value: String, against base: String, credentials: CredentialsLookup) -> ConfigPath {
        guard let name = Credentials.name(in: value) else { return .file(Paths.resolve(value, against: base)) }
        if let problem = Credentials.problem(withName: name) { return .invalid("\"\(value)\": \(problem)") }
        guard let directory = credentials.directory else {
            switch credentials.whenUnset {
            case .skip:
                return .unchecked(name: name)
            case .refuse:
                return .invalid("\"\(value)\" is a systemd credential but $\(Credentials.variable) is not set: "
                    + "run fastgw under systemd with LoadCredential=\(name):/path/to/file (or SetCredential=\(name):…) "
                    + "in its unit, or set \(Credentials.variable) to a directory holding \(name)")
            }
        }
        guard directory.hasPrefix("/") else {
            return .invalid("\"\(value)\": $\(Credentials.variable) \"\(directory)\" is not an absolute path")
        }
        return .credential(name: name, path: Paths.resolve(name, against: directory))
    }
}

/// Per-file context of path values: where relative paths start, where credentials are, and
/// every credential the file uses (shared by all the readers of one file).
final class ConfigPaths {
    let baseDirectory: String
    let credentials: CredentialsLookup
    private(set) var references: [CredentialReference] = []

    init(baseDirectory: String, credentials: CredentialsLookup) {
        self.baseDirectory = baseDirectory
        self.credentials = credentials
    }

    func record(_ reference: CredentialReference) {
        references.append(reference)
    }
}

extension TableReader {
    /// A path value: a file relative to the config file's directory, or `credential:NAME`. A
    /// bad value is reported on the key's line and returned as written (the parse fails);
    /// nil only when the key is absent. `credential: false` for paths fastgw creates.
    mutating func path(_ key: String, credential allowed: Bool = true) -> String? {
        guard let value = string(key) else { return nil }
        if !allowed, Credentials.name(in: value) != nil {
            error(key, "\(key) \"\(value)\": fastgw creates this file, so it cannot be a systemd credential (those are read-only)")
            return value
        }
        switch ConfigPath.resolve(value, against: paths.baseDirectory, credentials: paths.credentials) {
        case .file(let path):
            return path
        case .credential(let name, let path):
            paths.record(CredentialReference(key: "\(label)\(key)", line: line(of: key), name: name, path: path))
            return path
        case .unchecked(let name):
            paths.record(CredentialReference(key: "\(label)\(key)", line: line(of: key), name: name, path: nil))
            return value
        case .invalid(let reason):
            error(key, "\(key) \(reason)")
            return value
        }
    }
}
