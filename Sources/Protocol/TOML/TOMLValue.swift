/// A parsed TOML value. Only what configuration files need: strings, integers, floats,
/// booleans, arrays and tables (date-times are refused with a clear error).
public indirect enum TOMLValue: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table(TOMLTable)

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var int: Int? { if case .integer(let i) = self { return i } else { return nil } }
    public var bool: Bool? { if case .boolean(let b) = self { return b } else { return nil } }
    public var array: [TOMLValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var table: TOMLTable? { if case .table(let t) = self { return t } else { return nil } }
}

/// A table whose keys remember the line they were defined on, so validation errors can
/// point at the exact line.
public struct TOMLTable: Equatable, Sendable {
    public private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]
    private var lines: [String: Int] = [:]
    /// Line of the `[header]` (or of the first key for the root / inline tables).
    public var line: Int

    /// Set by `[[array]]` headers and inline tables: such tables cannot be reopened with `[x]`.
    var sealed = false
    /// True for tables created implicitly by a dotted header (`[a.b]` creates `a`).
    var implicit = false

    public init(line: Int = 0) {
        self.line = line
    }

    public subscript(key: String) -> TOMLValue? { values[key] }

    public func line(of key: String) -> Int? { lines[key] }

    mutating func set(_ key: String, _ value: TOMLValue, line: Int) {
        if values[key] == nil { keys.append(key) }
        values[key] = value
        lines[key] = lines[key] ?? line
    }

    public static func == (a: TOMLTable, b: TOMLTable) -> Bool {
        a.keys == b.keys && a.values == b.values
    }
}

public struct TOMLSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    public let line: Int
    public let message: String

    public var description: String { "line \(line): \(message)" }
}
