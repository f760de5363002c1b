/// A parsed TOML 1.0 value. The four date-time forms are read like every other value, so a
/// valid file always parses; no fastgw key takes one, so the config readers refuse them as
/// wrong types, with their line (`ConfigReader`).
/// Not `indirect`: arrays and tables already live on the heap, and a box per value would cost
/// an allocation and an extra reference to release before a nested value can change in place.
public enum TOMLValue: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table(TOMLTable)
    /// `1979-05-27T07:32:00-08:00`: an instant, with the offset (minutes east of UTC) as written.
    /// Int16 keeps the payload (14 bytes) below a table's, so a value stays 48 bytes.
    case offsetDateTime(TOMLDate, TOMLTime, offsetMinutes: Int16)
    /// `1979-05-27T07:32:00`: a date and time in no particular zone.
    case localDateTime(TOMLDate, TOMLTime)
    case localDate(TOMLDate)
    case localTime(TOMLTime)

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var int: Int? { if case .integer(let i) = self { return i } else { return nil } }
    public var bool: Bool? { if case .boolean(let b) = self { return b } else { return nil } }
    public var array: [TOMLValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var table: TOMLTable? { if case .table(let t) = self { return t } else { return nil } }

    /// What TOML calls this value, with its text, for an error that refuses a date-time where
    /// another type is expected; nil for the other types.
    public var dateTimeDescription: String? {
        switch self {
        case .offsetDateTime(let d, let t, let offset): return "the offset date-time \(d)T\(t)\(offsetText(minutes: Int(offset)))"
        case .localDateTime(let d, let t): return "the local date-time \(d)T\(t)"
        case .localDate(let d): return "the local date \(d)"
        case .localTime(let t): return "the local time \(t)"
        default: return nil
        }
    }

    /// Runs `body` on the table this value holds, in place: the value lets go of its own
    /// reference first, so the table's storage is unique and is not copied. Copying it here
    /// made every key of a `[[agent]]` copy all agents before it (quadratic `fastgw check`).
    /// False when the value is no table. Not generic: a debug build looks up generic
    /// metadata at every call, and this runs for every key of the file.
    mutating func modifyTable(_ body: (inout TOMLTable) throws(TOMLSyntaxError) -> Void) throws(TOMLSyntaxError) -> Bool {
        guard case .table(var t) = self else { return false }
        self = .boolean(false)
        defer { self = .table(t) }
        try body(&t)
        return true
    }

    /// `modifyTable` for the last element of an array, which must be a table.
    mutating func modifyLastTable(_ body: (inout TOMLTable) throws(TOMLSyntaxError) -> Void) throws(TOMLSyntaxError) -> Bool {
        guard case .array(var items) = self, !items.isEmpty else { return false }
        self = .boolean(false)
        defer { self = .array(items) }
        return try items[items.count - 1].modifyTable(body)
    }

    /// Appends in place to the array this value holds.
    mutating func append(_ element: TOMLValue) {
        guard case .array(var items) = self else { return }
        self = .boolean(false)
        items.append(element)
        self = .array(items)
    }

    /// Takes the table out, leaving a placeholder (`TOMLTable.detach`).
    mutating func takeTable() -> TOMLTable? {
        guard case .table(let t) = self else { return nil }
        self = .boolean(false)
        return t
    }

    /// Takes the last table out of the array (`TOMLTable.detach`).
    mutating func popLastTable() -> TOMLTable? {
        guard case .array(var items) = self else { return nil }
        self = .boolean(false)
        defer { self = .array(items) }
        guard case .table(let t)? = items.last else { return nil }
        items.removeLast()
        return t
    }
}

/// A table whose keys remember the line they were defined on, so validation errors can
/// point at the exact line.
public struct TOMLTable: Equatable, Sendable {
    public private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]
    private var lines: [String: Int] = [:]
    /// Keys made by `[[key]]` headers: only these arrays take more tables, and only their
    /// last table is extended by `[key.sub]` (a static `key = [...]` is closed, TOML 1.0).
    private var tableArrays: Set<String> = []
    /// Line of the `[header]` (or of the first key for the root / inline tables).
    public var line: Int

    /// Set by `[[array]]` headers and inline tables: such tables cannot be reopened with `[x]`.
    var sealed = false
    /// True for tables created implicitly by a dotted header (`[a.b]` creates `a`).
    var implicit = false
    /// True for tables dotted keys made or added to (`a.b = 1` makes `a`): `[a]` cannot
    /// define them afterwards, though `[a.c]` may add a table below (TOML 1.0).
    var dotted = false

    public init(line: Int = 0) {
        self.line = line
    }

    public subscript(key: String) -> TOMLValue? { values[key] }

    public func line(of key: String) -> Int? { lines[key] }

    func isTableArray(_ key: String) -> Bool { tableArrays.contains(key) }

    func contains(_ key: String) -> Bool { values.index(forKey: key) != nil }

    /// Sets `key`; a key keeps its place and line when its value is replaced.
    mutating func set(_ key: String, _ value: TOMLValue, line: Int) {
        if values.updateValue(value, forKey: key) == nil {
            keys.append(key)
            lines[key] = line
        }
    }

    /// Starts the array of tables `key`, empty until its first table is attached.
    mutating func startTableArray(_ key: String, line: Int) {
        set(key, .array([]), line: line)
        tableArrays.insert(key)
    }

    /// Takes out the table at `key` (the last of an array of tables) to be filled apart
    /// from the tree; `attach` puts it back. The key keeps its place and line meanwhile.
    mutating func detach(_ key: String) -> TOMLTable? {
        guard let index = values.index(forKey: key) else { return nil }
        return tableArrays.contains(key) ? values.values[index].popLastTable() : values.values[index].takeTable()
    }

    /// Puts a table back at `key`: in its place, or at the end of an array of tables.
    mutating func attach(_ key: String, _ table: TOMLTable) {
        guard let index = values.index(forKey: key) else { return }
        if tableArrays.contains(key) {
            values.values[index].append(.table(table))
        } else {
            values.values[index] = .table(table)
        }
    }

    /// Runs `body` on the value at `key` where it is stored (see `TOMLValue.modifyTable`)
    /// and returns what it returns; nil when there is no such key.
    mutating func modify(_ key: String, _ body: (inout TOMLValue) throws(TOMLSyntaxError) -> Bool) throws(TOMLSyntaxError) -> Bool? {
        guard let index = values.index(forKey: key) else { return nil }
        return try body(&values.values[index])
    }

    public static func == (a: TOMLTable, b: TOMLTable) -> Bool {
        a.keys == b.keys && a.values == b.values
    }
}

public struct TOMLSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    public let line: Int
    public let message: String

    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { "line \(line): \(message)" }
}
