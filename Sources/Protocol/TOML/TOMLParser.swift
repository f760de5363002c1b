/// A TOML 1.0 reader for configuration files, Foundation-free: it reads what TOML 1.0 allows
/// and refuses what it forbids, as the toml-test suite checks (TOMLConformanceTests).
/// Any input is an error with a line or a table, never a crash: sizes and nesting are
/// bounded by `TOMLLimits`, and time is linear in the input.
///
/// The reader's own state is plain values (the input is borrowed as a buffer pointer, the tree
/// is built outside it): a debug build copies `self` at every non-mutating call such as
/// `peek`, and copies of arrays and tables there tripled the time of `fastgw check`.
public struct TOMLParser {
    let b: UnsafeBufferPointer<UInt8>
    var i = 0
    var line = 1
    /// Nesting of the value being read (`TOMLLimits.maxDepth`).
    var depth = 0

    public static func parse(_ text: String) throws(TOMLSyntaxError) -> TOMLTable {
        try parse(validUTF8: Array(text.utf8))
    }

    /// Parses a file's raw bytes: size and UTF-8 are checked first (`TOMLInput`).
    public static func parse(bytes: [UInt8]) throws(TOMLSyntaxError) -> TOMLTable {
        if case .failure(let error) = TOMLInput.text(of: bytes) { throw error }
        return try parse(validUTF8: bytes)
    }

    private static func parse(validUTF8 bytes: [UInt8]) throws(TOMLSyntaxError) -> TOMLTable {
        if let error = TOMLInput.sizeError(bytes) { throw error }
        return try bytes.withUnsafeBufferPointer { (buffer) throws(TOMLSyntaxError) -> TOMLTable in
            var parser = TOMLParser(bytes: buffer)
            // A byte order mark (as some Windows editors write) is no part of the document.
            if buffer.starts(with: [0xEF, 0xBB, 0xBF]) { parser.i = 3 }
            return try parser.document()
        }
    }

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.b = bytes
    }

    func fail(_ message: String) -> TOMLSyntaxError {
        TOMLSyntaxError(line: line, message: message)
    }

    var peek: UInt8? { i < b.count ? b[i] : nil }

    func peek(_ offset: Int) -> UInt8? { i + offset < b.count ? b[i + offset] : nil }

    // MARK: document structure

    /// The table `key = value` lines go to (the last header's) is held apart from the tree
    /// while its lines are read, so each line is one insertion instead of a walk from the
    /// root through arrays of tables; the next header puts it back first.
    private mutating func document() throws(TOMLSyntaxError) -> TOMLTable {
        var tree = TOMLTable(line: 1)
        var open = TOMLTable(line: 1)
        /// Where `open` belongs: the last header's path; nil while the root itself is open.
        var openPath: [String]?
        while i < b.count {
            skipSpaces()
            guard let c = peek else { break }
            switch c {
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "#"):
                try endOfLine()
            case UInt8(ascii: "["):
                try Self.attach(&open, at: openPath, in: &tree)
                let header = peek(1) == UInt8(ascii: "[") ? try arrayHeader(in: &tree) : try tableHeader(in: &tree)
                openPath = header.path
                open = header.table
                try endOfLine()
            default:
                let keyLine = line
                let path = try key()
                skipSpaces()
                guard peek == UInt8(ascii: "=") else { throw fail("expected = after key \(Self.clip(path))") }
                i += 1
                skipSpaces()
                depth = (openPath?.count ?? 0) + path.count
                try checkDepth()
                let value = try value()
                try Self.insert(into: &open, key: path, value: value, line: keyLine)
                try endOfLine()
            }
        }
        try Self.attach(&open, at: openPath, in: &tree)
        return tree
    }

    /// A header's path and its table, taken out of the tree to be filled.
    private typealias Header = (path: [String], table: TOMLTable)

    private mutating func tableHeader(in root: inout TOMLTable) throws(TOMLSyntaxError) -> Header {
        let headerLine = line
        i += 1
        skipSpaces()
        let path = try key()
        skipSpaces()
        guard peek == UInt8(ascii: "]") else { throw fail("expected ] to close the table header") }
        i += 1
        return (path, try Self.define(table: path, in: &root, line: headerLine))
    }

    private mutating func arrayHeader(in root: inout TOMLTable) throws(TOMLSyntaxError) -> Header {
        let headerLine = line
        i += 2
        skipSpaces()
        let path = try key()
        skipSpaces()
        guard peek == UInt8(ascii: "]"), peek(1) == UInt8(ascii: "]") else { throw fail("expected ]] to close the array-of-tables header") }
        i += 2
        return (path, try Self.append(tableTo: path, in: &root, line: headerLine))
    }

    /// Refuses input nested deeper than `TOMLLimits.maxDepth`, before any recursion into it.
    func checkDepth() throws(TOMLSyntaxError) {
        if depth > TOMLLimits.maxDepth { throw tooDeep() }
    }

    func tooDeep() -> TOMLSyntaxError {
        fail("more than \(TOMLLimits.maxDepth) levels of nesting "
            + "(each part of a table header or dotted key, and each array or inline table, is one level)")
    }

    // MARK: tree building

    /// Runs `body` on the table at `path` below `t`, creating missing tables and descending
    /// into the last table of arrays of tables. Every level is changed in place
    /// (`TOMLTable.modify`), so adding a key costs the same with 50,000 tables before it.
    /// A dotted key (`dotted`) may only pass through tables that dotted keys or header paths
    /// made on the way; TOML 1.0 keeps it out of tables a `[header]` defined and out of arrays.
    private static func descend(
        _ t: inout TOMLTable, _ path: ArraySlice<String>, line: Int, dotted: Bool = false,
        _ body: (inout TOMLTable) throws(TOMLSyntaxError) -> Void
    ) throws(TOMLSyntaxError) {
        guard let first = path.first else { return try body(&t) }
        let rest = path.dropFirst()
        let isTableArray = t.isTableArray(first)
        if dotted && isTableArray {
            throw TOMLSyntaxError(line: line, message: "a dotted key cannot add to the array of tables \(clip(first)); "
                + "write the key under its [[\(clip(first))]] header")
        }
        let descended = try t.modify(first) { (value: inout TOMLValue) throws(TOMLSyntaxError) -> Bool in
            if isTableArray {
                return try value.modifyLastTable { (last: inout TOMLTable) throws(TOMLSyntaxError) in
                    try descend(&last, rest, line: line, body)
                }
            }
            return try value.modifyTable { (sub: inout TOMLTable) throws(TOMLSyntaxError) in
                if sub.sealed { throw TOMLSyntaxError(line: line, message: "cannot extend inline table \(clip(first))") }
                if dotted {
                    guard sub.implicit || sub.dotted else {
                        throw TOMLSyntaxError(line: line, message: "a dotted key cannot add to table \(clip(first)), "
                            + "which a [header] defined; write the key under that header")
                    }
                    sub.dotted = true
                }
                try descend(&sub, rest, line: line, dotted: dotted, body)
            }
        }
        switch descended {
        case true?:
            return
        case nil:
            var sub = TOMLTable(line: line)
            sub.implicit = !dotted
            sub.dotted = dotted
            try descend(&sub, rest, line: line, dotted: dotted, body)
            t.set(first, .table(sub), line: line)
        case false?:
            let what = t[first]?.array != nil ? "an array of values, not of tables" : "a value, not a table"
            throw TOMLSyntaxError(line: line, message: "\(clip(first)) is \(what)")
        }
    }

    /// `[path]`: creates the table (or makes an implicit one explicit) and takes it out.
    private static func define(table path: [String], in root: inout TOMLTable, line: Int) throws(TOMLSyntaxError) -> TOMLTable {
        let last = path[path.count - 1]
        var defined = TOMLTable(line: line)
        try descend(&root, path.dropLast(), line: line) { (t: inout TOMLTable) throws(TOMLSyntaxError) in
            if t.contains(last) {
                guard let existing = t[last]?.table, existing.implicit, !existing.sealed, !existing.dotted else {
                    let how = t[last]?.table?.dotted == true ? " (dotted keys defined it before)" : ""
                    throw TOMLSyntaxError(line: line, message: "[\(clip(path))] is defined twice\(how)")
                }
            } else {
                t.set(last, .table(TOMLTable(line: line)), line: line)
            }
            if let table = t.detach(last) { defined = table }
        }
        defined.implicit = false
        defined.line = line
        return defined
    }

    /// `[[path]]`: appends a table to the array of tables (starting it) and takes it out.
    private static func append(tableTo path: [String], in root: inout TOMLTable, line: Int) throws(TOMLSyntaxError) -> TOMLTable {
        let last = path[path.count - 1]
        try descend(&root, path.dropLast(), line: line) { (t: inout TOMLTable) throws(TOMLSyntaxError) in
            if !t.contains(last) {
                t.startTableArray(last, line: line)
            } else if !t.isTableArray(last) {
                throw TOMLSyntaxError(line: line, message: "[[\(clip(path))]] conflicts with \(clip(last)) defined before")
            }
        }
        return TOMLTable(line: line)
    }

    /// Puts the open table back where its header took it from (or makes it the root).
    private static func attach(_ open: inout TOMLTable, at path: [String]?, in tree: inout TOMLTable) throws(TOMLSyntaxError) {
        let table = open
        // Let go of `open`'s reference, so the table in the tree stays unique (no copy later).
        open = TOMLTable()
        guard let path else {
            tree = table
            return
        }
        try descend(&tree, path.dropLast(), line: table.line) { (t: inout TOMLTable) in
            t.attach(path[path.count - 1], table)
        }
    }

    static func insert(into table: inout TOMLTable, key: [String], value: TOMLValue, line: Int) throws(TOMLSyntaxError) {
        let last = key[key.count - 1]
        try descend(&table, key.dropLast(), line: line, dotted: true) { (t: inout TOMLTable) throws(TOMLSyntaxError) in
            if t.contains(last) {
                throw TOMLSyntaxError(line: line, message: "key \(clip(key)) is defined twice")
            }
            t.set(last, value, line: line)
        }
    }

    // MARK: lexical pieces

    mutating func skipSpaces() {
        while let c = peek, c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { i += 1 }
    }

    /// Skips a comment and the line break; anything else left on the line is an error.
    private mutating func endOfLine() throws(TOMLSyntaxError) {
        skipSpaces()
        if peek == UInt8(ascii: "#") { try comment() }
        if peek == UInt8(ascii: "\r"), peek(1) == UInt8(ascii: "\n") { i += 1 }
        guard let c = peek else { return }
        guard c == UInt8(ascii: "\n") else { throw fail("unexpected \(Self.show(c)) after the value; one key = value per line") }
        i += 1
        line += 1
    }

    /// A comment up to (not including) its line break; a carriage return is part of the
    /// break only right before the newline.
    private mutating func comment() throws(TOMLSyntaxError) {
        while let c = peek, c != UInt8(ascii: "\n") {
            if c != UInt8(ascii: "\r") || peek(1) != UInt8(ascii: "\n") { try checkText(c, in: "a comment") }
            i += 1
        }
    }

    /// Whitespace, newlines and comments, as allowed inside arrays.
    mutating func skipBlank() throws(TOMLSyntaxError) {
        while let c = peek {
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || (c == UInt8(ascii: "\r") && peek(1) == UInt8(ascii: "\n")) {
                i += 1
            } else if c == UInt8(ascii: "\n") {
                i += 1
                line += 1
            } else if c == UInt8(ascii: "#") {
                try comment()
            } else {
                return
            }
        }
    }

    /// A bare, quoted or dotted key: its parts, each a nesting level (`TOMLLimits`).
    mutating func key() throws(TOMLSyntaxError) -> [String] {
        var parts: [String] = []
        while true {
            guard parts.count < TOMLLimits.maxDepth else { throw tooDeep() }
            skipSpaces()
            if let q = peek, q == UInt8(ascii: "\"") || q == UInt8(ascii: "'"), peek(1) == q, peek(2) == q {
                throw fail("a key cannot be a multi-line string; quote it with one \(Self.show(q)) on each side")
            }
            switch peek {
            case UInt8(ascii: "\"")?: parts.append(try basicString())
            case UInt8(ascii: "'")?: parts.append(try literalString())
            default:
                let start = i
                while let c = peek, Self.isBareKey(c) { i += 1 }
                guard i > start else { throw fail(peek.map { "unexpected \(Self.show($0)) where a key was expected" } ?? "a key is missing") }
                parts.append(String(decoding: b[start..<i], as: UTF8.self))
            }
            if parts[parts.count - 1].utf8.count > TOMLLimits.maxKeyLength {
                throw fail("a key is longer than \(TOMLLimits.maxKeyLength) bytes")
            }
            skipSpaces()
            guard peek == UInt8(ascii: ".") else { return parts }
            i += 1
        }
    }

    static func isBareKey(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2d
    }

    static func show(_ c: UInt8) -> String {
        c >= 0x21 && c < 0x7f ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x\(String(c, radix: 16))"
    }

    /// Text from the file as an error message quotes it: cut short (`TOMLLimits.maxQuoted`).
    static func clip(_ text: String) -> String { text.clipped(head: TOMLLimits.maxQuoted) }

    static func clip(_ key: [String]) -> String { clip(key.joined(separator: ".")) }
}
