/// A TOML 1.0 reader for configuration files, Foundation-free. Everything a config needs is
/// supported (tables, arrays of tables, dotted keys, inline tables, all string forms,
/// integers in every base, floats, booleans); date-times are refused with an explanation.
public struct TOMLParser {
    private let b: [UInt8]
    private var i = 0
    private var line = 1
    private var root = TOMLTable(line: 1)
    /// Where `key = value` lines go: the path of the last `[table]` / `[[array]]` header.
    private var current: [String] = []

    public static func parse(_ text: String) throws(TOMLSyntaxError) -> TOMLTable {
        var p = TOMLParser(bytes: Array(text.utf8))
        try p.document()
        return p.root
    }

    private init(bytes: [UInt8]) {
        self.b = bytes
    }

    private func fail(_ message: String) -> TOMLSyntaxError {
        TOMLSyntaxError(line: line, message: message)
    }

    private var peek: UInt8? { i < b.count ? b[i] : nil }

    private func peek(_ offset: Int) -> UInt8? { i + offset < b.count ? b[i + offset] : nil }

    // MARK: document structure

    private mutating func document() throws(TOMLSyntaxError) {
        while i < b.count {
            skipSpaces()
            guard let c = peek else { break }
            switch c {
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "#"):
                try endOfLine()
            case UInt8(ascii: "["):
                if peek(1) == UInt8(ascii: "[") { try arrayHeader() } else { try tableHeader() }
                try endOfLine()
            default:
                let keyLine = line
                let path = try key()
                skipSpaces()
                guard peek == UInt8(ascii: "=") else { throw fail("expected = after key \(path.joined(separator: "."))") }
                i += 1
                skipSpaces()
                let value = try value()
                try Self.insert(into: &root, at: current, key: path, value: value, line: keyLine)
                try endOfLine()
            }
        }
    }

    private mutating func tableHeader() throws(TOMLSyntaxError) {
        let headerLine = line
        i += 1
        skipSpaces()
        let path = try key()
        skipSpaces()
        guard peek == UInt8(ascii: "]") else { throw fail("expected ] to close the table header") }
        i += 1
        try Self.define(table: path, in: &root, line: headerLine)
        current = path
    }

    private mutating func arrayHeader() throws(TOMLSyntaxError) {
        let headerLine = line
        i += 2
        skipSpaces()
        let path = try key()
        skipSpaces()
        guard peek == UInt8(ascii: "]"), peek(1) == UInt8(ascii: "]") else { throw fail("expected ]] to close the array-of-tables header") }
        i += 2
        try Self.append(tableTo: path, in: &root, line: headerLine)
        current = path
    }

    // MARK: tree building

    /// Runs `body` on the table at `path`, descending into the last element of arrays of tables.
    private static func descend(
        _ t: inout TOMLTable, _ path: ArraySlice<String>, line: Int, create: Bool,
        _ body: (inout TOMLTable) throws(TOMLSyntaxError) -> Void
    ) throws(TOMLSyntaxError) {
        guard let first = path.first else { return try body(&t) }
        switch t[first] {
        case nil where create:
            var sub = TOMLTable(line: line)
            sub.implicit = true
            try descend(&sub, path.dropFirst(), line: line, create: create, body)
            t.set(first, .table(sub), line: line)
        case .table(var sub)?:
            if sub.sealed && create { throw TOMLSyntaxError(line: line, message: "cannot extend inline table \(first)") }
            try descend(&sub, path.dropFirst(), line: line, create: create, body)
            t.set(first, .table(sub), line: line)
        case .array(var items)?:
            guard case .table(var last)? = items.last else {
                throw TOMLSyntaxError(line: line, message: "\(first) is an array of values, not of tables")
            }
            try descend(&last, path.dropFirst(), line: line, create: create, body)
            items[items.count - 1] = .table(last)
            t.set(first, .array(items), line: line)
        default:
            throw TOMLSyntaxError(line: line, message: "\(first) is a value, not a table")
        }
    }

    private static func define(table path: [String], in root: inout TOMLTable, line: Int) throws(TOMLSyntaxError) {
        let last = path[path.count - 1]
        try descend(&root, path.dropLast(), line: line, create: true) { (t: inout TOMLTable) throws(TOMLSyntaxError) in
            switch t[last] {
            case nil:
                t.set(last, .table(TOMLTable(line: line)), line: line)
            case .table(var existing)? where existing.implicit && !existing.sealed:
                existing.implicit = false
                existing.line = line
                t.set(last, .table(existing), line: line)
            default:
                throw TOMLSyntaxError(line: line, message: "[\(path.joined(separator: "."))] is defined twice")
            }
        }
    }

    private static func append(tableTo path: [String], in root: inout TOMLTable, line: Int) throws(TOMLSyntaxError) {
        let last = path[path.count - 1]
        try descend(&root, path.dropLast(), line: line, create: true) { (t: inout TOMLTable) throws(TOMLSyntaxError) in
            switch t[last] {
            case nil:
                t.set(last, .array([.table(TOMLTable(line: line))]), line: line)
            case .array(var items)? where items.allSatisfy({ $0.table != nil }) && !items.isEmpty:
                items.append(.table(TOMLTable(line: line)))
                t.set(last, .array(items), line: line)
            default:
                throw TOMLSyntaxError(line: line, message: "[[\(path.joined(separator: "."))]] conflicts with \(last) defined before")
            }
        }
    }

    private static func insert(
        into root: inout TOMLTable, at table: [String], key: [String], value: TOMLValue, line: Int
    ) throws(TOMLSyntaxError) {
        let path = table + key.dropLast()
        let last = key[key.count - 1]
        try descend(&root, path[...], line: line, create: true) { (t: inout TOMLTable) throws(TOMLSyntaxError) in
            if t[last] != nil {
                throw TOMLSyntaxError(line: line, message: "key \(key.joined(separator: ".")) is defined twice")
            }
            t.set(last, value, line: line)
        }
    }

    // MARK: lexical pieces

    private mutating func skipSpaces() {
        while let c = peek, c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { i += 1 }
    }

    /// Skips a comment and the line break; anything else left on the line is an error.
    private mutating func endOfLine() throws(TOMLSyntaxError) {
        skipSpaces()
        if peek == UInt8(ascii: "#") {
            while let c = peek, c != UInt8(ascii: "\n") { i += 1 }
        }
        if peek == UInt8(ascii: "\r"), peek(1) == UInt8(ascii: "\n") { i += 1 }
        guard let c = peek else { return }
        guard c == UInt8(ascii: "\n") else { throw fail("unexpected \(Self.show(c)) after the value; one key = value per line") }
        i += 1
        line += 1
    }

    /// Whitespace, newlines and comments, as allowed inside arrays.
    private mutating func skipBlank() {
        while let c = peek {
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r") {
                i += 1
            } else if c == UInt8(ascii: "\n") {
                i += 1
                line += 1
            } else if c == UInt8(ascii: "#") {
                while let d = peek, d != UInt8(ascii: "\n") { i += 1 }
            } else {
                return
            }
        }
    }

    private mutating func key() throws(TOMLSyntaxError) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            switch peek {
            case UInt8(ascii: "\"")?: parts.append(try basicString())
            case UInt8(ascii: "'")?: parts.append(try literalString())
            default:
                let start = i
                while let c = peek, Self.isBareKey(c) { i += 1 }
                guard i > start else { throw fail(peek.map { "unexpected \(Self.show($0)) where a key was expected" } ?? "a key is missing") }
                parts.append(String(decoding: b[start..<i], as: UTF8.self))
            }
            skipSpaces()
            guard peek == UInt8(ascii: ".") else { return parts }
            i += 1
        }
    }

    private static func isBareKey(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2d
    }

    private static func show(_ c: UInt8) -> String {
        c >= 0x21 && c < 0x7f ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x\(String(c, radix: 16))"
    }

    // MARK: values

    private mutating func value() throws(TOMLSyntaxError) -> TOMLValue {
        guard let c = peek else { throw fail("a value is missing") }
        switch c {
        case UInt8(ascii: "\""): return .string(try basicString())
        case UInt8(ascii: "'"): return .string(try literalString())
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "{"): return try inlineTable()
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            if word("true") { return .boolean(true) }
            if word("false") { return .boolean(false) }
            throw fail("unexpected value; strings need quotes")
        default:
            return try number()
        }
    }

    private mutating func word(_ w: String) -> Bool {
        let bytes = Array(w.utf8)
        guard i + bytes.count <= b.count, Array(b[i..<i + bytes.count]) == bytes else { return false }
        if let next = peek(bytes.count), Self.isBareKey(next) { return false }
        i += bytes.count
        return true
    }

    private mutating func number() throws(TOMLSyntaxError) -> TOMLValue {
        let start = i
        while let c = peek, Self.isBareKey(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") || c == UInt8(ascii: ":") { i += 1 }
        let text = String(decoding: b[start..<i], as: UTF8.self)
        guard !text.isEmpty else { throw fail(peek.map { "unexpected \(Self.show($0)) where a value was expected" } ?? "a value is missing") }
        if text.count >= 5, text.utf8.dropFirst(4).first == UInt8(ascii: "-") || text.contains(":") {
            throw fail("dates and times are not supported here; write durations as strings such as \"15s\"")
        }
        let digits = text.replacingUnderscores()
        var body = Substring(digits)
        var sign = 1
        if body.first == "+" || body.first == "-" {
            if body.first == "-" { sign = -1 }
            body = body.dropFirst()
        }
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where body.hasPrefix(prefix) {
            guard sign == 1, digits.first != "+", let v = Int(body.dropFirst(2), radix: radix) else { throw fail("invalid integer \(text)") }
            return .integer(v)
        }
        if let v = Int(body) {
            if body.count > 1 && body.hasPrefix("0") { throw fail("leading zeros are not allowed in \(text)") }
            return .integer(sign * v)
        }
        switch body {
        case "inf": return .float(Double(sign) * .infinity)
        case "nan": return .float(.nan)
        default: break
        }
        if body.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let d = Double(body) {
            return .float(Double(sign) * d)
        }
        throw fail("invalid value \(text) (strings need quotes)")
    }

    private mutating func array() throws(TOMLSyntaxError) -> TOMLValue {
        i += 1
        var items: [TOMLValue] = []
        while true {
            skipBlank()
            guard let c = peek else { throw fail("unterminated array") }
            if c == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            items.append(try value())
            skipBlank()
            if peek == nil { throw fail("unterminated array") }
            if peek == UInt8(ascii: ",") {
                i += 1
            } else if peek != UInt8(ascii: "]") {
                throw fail("expected , or ] in array")
            }
        }
    }

    private mutating func inlineTable() throws(TOMLSyntaxError) -> TOMLValue {
        let tableLine = line
        i += 1
        var table = TOMLTable(line: tableLine)
        skipSpaces()
        if peek == UInt8(ascii: "}") {
            i += 1
            table.sealed = true
            return .table(table)
        }
        while true {
            skipSpaces()
            let k = try key()
            skipSpaces()
            guard peek == UInt8(ascii: "=") else { throw fail("expected = in inline table") }
            i += 1
            skipSpaces()
            let v = try value()
            try Self.insert(into: &table, at: [], key: k, value: v, line: line)
            skipSpaces()
            if peek == UInt8(ascii: ",") {
                i += 1
            } else if peek == UInt8(ascii: "}") {
                i += 1
                table.sealed = true
                return .table(table)
            } else {
                throw fail("expected , or } in inline table (inline tables stay on one line)")
            }
        }
    }

    // MARK: strings

    private mutating func literalString() throws(TOMLSyntaxError) -> String {
        if peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") { return try multiline(quote: UInt8(ascii: "'"), escapes: false) }
        i += 1
        let start = i
        while let c = peek, c != UInt8(ascii: "'") {
            if c == UInt8(ascii: "\n") { throw fail("unterminated string") }
            i += 1
        }
        guard peek != nil else { throw fail("unterminated string") }
        defer { i += 1 }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    private mutating func basicString() throws(TOMLSyntaxError) -> String {
        if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") { return try multiline(quote: UInt8(ascii: "\""), escapes: true) }
        i += 1
        var out: [UInt8] = []
        while let c = peek {
            switch c {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try escape(into: &out)
            case UInt8(ascii: "\n"):
                throw fail("unterminated string")
            default:
                out.append(c)
                i += 1
            }
        }
        throw fail("unterminated string")
    }

    private mutating func multiline(quote q: UInt8, escapes: Bool) throws(TOMLSyntaxError) -> String {
        i += 3
        // A newline right after the opening quotes is not part of the string.
        if peek == UInt8(ascii: "\r") { i += 1 }
        if peek == UInt8(ascii: "\n") {
            i += 1
            line += 1
        }
        var out: [UInt8] = []
        while let c = peek {
            if c == q, peek(1) == q, peek(2) == q {
                i += 3
                // Up to two more quotes belong to the content (`""""` ends with one quote inside).
                while peek == q, out.count >= 0 {
                    out.append(q)
                    i += 1
                }
                return String(decoding: out, as: UTF8.self)
            }
            if escapes && c == UInt8(ascii: "\\") {
                // Line-ending backslash: trim the newline and leading whitespace that follows.
                var j = i + 1
                while j < b.count, b[j] == UInt8(ascii: " ") || b[j] == UInt8(ascii: "\t") || b[j] == UInt8(ascii: "\r") { j += 1 }
                if j < b.count, b[j] == UInt8(ascii: "\n") {
                    i = j
                    while let d = peek, d == UInt8(ascii: " ") || d == UInt8(ascii: "\t") || d == UInt8(ascii: "\n") || d == UInt8(ascii: "\r") {
                        if d == UInt8(ascii: "\n") { line += 1 }
                        i += 1
                    }
                    continue
                }
                try escape(into: &out)
                continue
            }
            if c == UInt8(ascii: "\n") { line += 1 }
            out.append(c)
            i += 1
        }
        throw fail("unterminated multi-line string")
    }

    private mutating func escape(into out: inout [UInt8]) throws(TOMLSyntaxError) {
        i += 1
        guard let e = peek else { throw fail("unterminated string") }
        i += 1
        switch e {
        case UInt8(ascii: "b"): out.append(8)
        case UInt8(ascii: "t"): out.append(9)
        case UInt8(ascii: "n"): out.append(10)
        case UInt8(ascii: "f"): out.append(12)
        case UInt8(ascii: "r"): out.append(13)
        case UInt8(ascii: "\""): out.append(34)
        case UInt8(ascii: "\\"): out.append(92)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let n = e == UInt8(ascii: "u") ? 4 : 8
            guard i + n <= b.count, let v = UInt32(String(decoding: b[i..<i + n], as: UTF8.self), radix: 16),
                  let scalar = Unicode.Scalar(v) else {
                throw fail("invalid unicode escape")
            }
            i += n
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            throw fail("invalid escape \\\(Character(Unicode.Scalar(e)))")
        }
    }
}

extension String {
    func replacingUnderscores() -> String {
        String(self.filter { $0 != "_" })
    }
}
