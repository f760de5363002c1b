/// Collects diagnostics for one file while the typed readers walk it.
public final class ConfigDiagnostics {
    public let file: String
    public private(set) var items: [ConfigDiagnostic] = []

    init(file: String) {
        self.file = file
    }

    /// Messages quote values from the file; a long one keeps its start and its end (where
    /// the explanation is) so a hostile value cannot make a log record or an `ERR 422` line
    /// of many kilobytes (fastgwctl reads reply lines of at most 8 KiB).
    func error(line: Int?, _ message: String) {
        items.append(ConfigDiagnostic(file: file, line: line, message: message.clipped(head: 320, tail: 160)))
    }

    /// Problems found in another file the config names (an htpasswd file), with its lines.
    func append(_ foreign: [ConfigDiagnostic]) {
        items += foreign.map { ConfigDiagnostic(file: $0.file, line: $0.line, message: $0.message.clipped(head: 320, tail: 160)) }
    }

    var failed: Bool { !items.isEmpty }
}

/// Typed, strict access to one TOML table: every key read is remembered so that unknown keys
/// (usually typos) are reported instead of silently ignored.
struct TableReader {
    let table: TOMLTable
    /// Key path of this table, e.g. `listener[0]`; empty for the root.
    let path: String
    /// How errors name this table to an operator, e.g. `listener "ssh": `.
    var label: String
    let diagnostics: ConfigDiagnostics
    /// Where this file's path values lead (Credentials.swift).
    let paths: ConfigPaths
    private var seen: Set<String> = []

    init(_ table: TOMLTable, path: String, label: String = "", diagnostics: ConfigDiagnostics, paths: ConfigPaths) {
        self.table = table
        self.path = path
        self.label = label
        self.diagnostics = diagnostics
        self.paths = paths
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The line that defines `key`, else the table's own line (for a missing key).
    func line(of key: String) -> Int? {
        table.line(of: key) ?? (table.line > 0 ? table.line : nil)
    }

    func error(_ key: String, _ message: String) {
        diagnostics.error(line: line(of: key), "\(label)\(message)")
    }

    /// A value of the wrong type. Date-times are named as such: TOML reads an unquoted
    /// `07:30:00` or `2026-01-01` as one, which an operator may not expect (no key takes one).
    /// `quoting` says whether quotes would help: only where the key takes a string.
    func wrongType(_ key: String, _ v: TOMLValue, _ message: String, quoting: Bool = false) {
        let hint = quoting ? " (quote it to make it a string)" : ""
        error(key, message + (v.dateTimeDescription.map { ", not \($0)\(hint)" } ?? ""))
    }

    private mutating func value(_ key: String) -> TOMLValue? {
        seen.insert(key)
        return table[key]
    }

    func has(_ key: String) -> Bool { table[key] != nil }

    /// Reports `message` for `key` if it is present, instead of "unknown key".
    mutating func refuse(_ key: String, _ message: String) {
        guard value(key) != nil else { return }
        error(key, message)
    }

    mutating func string(_ key: String) -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.string else {
            wrongType(key, v, "\(key) must be a string", quoting: true)
            return nil
        }
        return s
    }

    mutating func int(_ key: String, range: ClosedRange<Int>? = nil) -> Int? {
        guard let v = value(key) else { return nil }
        guard let i = v.int else {
            wrongType(key, v, "\(key) must be an integer")
            return nil
        }
        if let range, !range.contains(i) {
            error(key, "\(key) \(i) out of range (\(range.lowerBound)-\(range.upperBound))")
            return nil
        }
        return i
    }

    mutating func bool(_ key: String) -> Bool? {
        guard let v = value(key) else { return nil }
        guard let b = v.bool else {
            wrongType(key, v, "\(key) must be true or false")
            return nil
        }
        return b
    }

    mutating func duration(_ key: String) -> Duration? {
        guard let text = string(key) else { return nil }
        guard let d = ConfigValues.duration(text) else {
            error(key, "\(key) \"\(text)\" is not a duration (examples: \"500ms\", \"15s\", \"2m\")")
            return nil
        }
        return d
    }

    /// A byte size: an integer or a string such as `"4MiB"`.
    mutating func size(_ key: String, range: ClosedRange<Int>) -> Int? {
        guard let v = value(key) else { return nil }
        let parsed: Int?
        if let i = v.int { parsed = i } else if let s = v.string { parsed = ConfigValues.size(s) } else { parsed = nil }
        guard let n = parsed else {
            wrongType(key, v, "\(key) must be a size such as 65536 or \"4MiB\"", quoting: true)
            return nil
        }
        guard range.contains(n) else {
            error(key, "\(key) \(n) out of range (\(range.lowerBound)-\(range.upperBound) bytes)")
            return nil
        }
        return n
    }

    /// `expected` replaces the message for a key that also takes something else.
    mutating func strings(_ key: String, expected: String? = nil) -> [String]? {
        guard let v = value(key) else { return nil }
        let message = expected ?? "\(key) must be an array of strings"
        guard let array = v.array else {
            wrongType(key, v, message)
            return nil
        }
        var out: [String] = []
        for element in array {
            guard let s = element.string else {
                wrongType(key, element, message, quoting: true)
                return nil
            }
            out.append(s)
        }
        return out
    }

    mutating func ints(_ key: String, range: ClosedRange<Int>) -> [Int]? {
        guard let v = value(key) else { return nil }
        guard let array = v.array else {
            wrongType(key, v, "\(key) must be an array of integers")
            return nil
        }
        var out: [Int] = []
        for element in array {
            guard let i = element.int else {
                wrongType(key, element, "\(key) must be an array of integers")
                return nil
            }
            guard range.contains(i) else {
                error(key, "\(key): \(i) out of range (\(range.lowerBound)-\(range.upperBound))")
                return nil
            }
            out.append(i)
        }
        return out
    }

    mutating func hostPort(_ key: String) -> HostPort? {
        guard let text = string(key) else { return nil }
        switch HostPort.parse(text) {
        case .success(let hp): return hp
        case .failure(let e):
            error(key, "\(key) \"\(text)\": \(e)")
            return nil
        }
    }

    mutating func oneOf(_ key: String, _ allowed: [String]) -> String? {
        guard let text = string(key) else { return nil }
        guard allowed.contains(text) else {
            error(key, "\(key) \"\(text)\" is not one of: \(allowed.joined(separator: ", "))")
            return nil
        }
        return text
    }

    /// Reads the `name` of a `[[kind]]` entry, labels later errors with it, and checks that it
    /// is valid and not already in `seen`.
    mutating func entryName(kind: String, seen: inout Set<String>) -> String {
        let name = string("name") ?? ""
        label = name.isEmpty ? "" : "\(kind) \"\(name)\": "
        if !Names.isValid(name) {
            error("name", "\(kind) name \"\(name)\" is invalid: \(Names.rule)")
        } else if !seen.insert(name).inserted {
            error("name", "duplicate \(kind) name \"\(name)\"")
        }
        return name
    }

    mutating func table(_ key: String) -> TableReader? {
        guard let v = value(key) else { return nil }
        guard let t = v.table else {
            error(key, "[\(key)] must be a table")
            return nil
        }
        return TableReader(t, path: keyPath(key), diagnostics: diagnostics, paths: paths)
    }

    /// `[[key]]` entries, each with its own reader.
    mutating func tables(_ key: String) -> [TableReader] {
        guard let v = value(key) else { return [] }
        guard let array = v.array else {
            error(key, "\(key) must be written as [[\(key)]] tables")
            return []
        }
        var out: [TableReader] = []
        for (i, element) in array.enumerated() {
            guard let t = element.table else {
                error(key, "\(key) must be written as [[\(key)]] tables")
                return []
            }
            out.append(TableReader(t, path: "\(keyPath(key))[\(i)]", diagnostics: diagnostics, paths: paths))
        }
        return out
    }

    /// Reports keys present in the file but never read: typos and keys from other versions.
    func rejectUnknownKeys() {
        for key in table.keys.sorted() where !seen.contains(key) {
            let place = path.isEmpty ? "at top level" : "in [\(path.withoutIndices())]"
            diagnostics.error(line: line(of: key), "\(label)unknown key \"\(key)\" \(place)")
        }
    }
}

extension String {
    /// `listener[0]` → `listener`, for naming a table as the operator wrote it.
    func withoutIndices() -> String {
        var out = ""
        var skipping = false
        for c in self {
            if c == "[" { skipping = true } else if c == "]" { skipping = false } else if !skipping { out.append(c) }
        }
        return out
    }
}

/// A config file's bytes as text: too large or not UTF-8 is refused with the line it
/// concerns (`TOMLInput`), before any parsing.
public enum ConfigText {
    public static func decode(_ bytes: [UInt8], file: String) -> Result<String, ConfigError> {
        TOMLInput.text(of: bytes).mapError { error in
            ConfigError([ConfigDiagnostic(file: file, line: error.line, message: error.message)])
        }
    }
}

/// Parses text into a root reader, turning TOML syntax errors into diagnostics with their line.
enum ConfigParsing {
    static func root(text: String, file: String, credentials: CredentialsLookup) -> (TableReader?, ConfigDiagnostics) {
        let diagnostics = ConfigDiagnostics(file: file)
        let paths = ConfigPaths(baseDirectory: Paths.directory(of: file), credentials: credentials)
        do {
            let table = try TOMLParser.parse(text)
            return (TableReader(table, path: "", diagnostics: diagnostics, paths: paths), diagnostics)
        } catch {
            diagnostics.error(line: error.line, "TOML syntax: \(error.message)")
            return (nil, diagnostics)
        }
    }
}
