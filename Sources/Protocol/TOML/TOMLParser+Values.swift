/// Values, numbers, arrays, inline tables and strings: the recursive part of the reader,
/// where `depth` bounds the recursion.
extension TOMLParser {
    mutating func value() throws(TOMLSyntaxError) -> TOMLValue {
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
        if let dateTime = try dateTime() { return dateTime }
        let start = i
        while let c = peek, Self.isBareKey(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") { i += 1 }
        if let v = Self.plainInteger(b[start..<i]) { return .integer(v) }
        guard i > start else { throw fail(peek.map { "unexpected \(Self.show($0)) where a value was expected" } ?? "a value is missing") }
        do {
            return try TOMLNumber.value(b[start..<i])
        } catch {
            throw fail(error.message)
        }
    }

    /// The common case, a short decimal integer, read without building strings; nil for
    /// anything else, which `number` reads (or refuses) the general way.
    private static func plainInteger(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
        var digits = bytes
        var sign = 1
        if let first = digits.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            sign = first == UInt8(ascii: "-") ? -1 : 1
            digits = digits.dropFirst()
        }
        // 18 digits cannot overflow; a leading zero is an error the general way reports.
        guard let first = digits.first, digits.count <= 18, first != UInt8(ascii: "0") || digits.count == 1 else { return nil }
        var value = 0
        for d in digits {
            guard d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(d - UInt8(ascii: "0"))
        }
        return sign * value
    }

    private mutating func array() throws(TOMLSyntaxError) -> TOMLValue {
        // An array may span lines; a missing `]` is reported on the line it opened on, where
        // the operator must look, not on the file's last line.
        let opened = line
        i += 1
        depth += 1
        defer { depth -= 1 }
        try checkDepth()
        var items: [TOMLValue] = []
        while true {
            try skipBlank()
            guard let c = peek else { throw TOMLSyntaxError(line: opened, message: "unterminated array (the file ends before its ])") }
            if c == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            items.append(try value())
            try skipBlank()
            if peek == nil { throw TOMLSyntaxError(line: opened, message: "unterminated array (the file ends before its ])") }
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
        depth += 1
        defer { depth -= 1 }
        try checkDepth()
        var table = TOMLTable(line: tableLine)
        skipSpaces()
        if peek == UInt8(ascii: "}") {
            i += 1
            table.sealed = true
            return .table(table)
        }
        while true {
            skipSpaces()
            // The key's own line: a multi-line string value would move `line` past it.
            let keyLine = line
            let k = try key()
            skipSpaces()
            guard peek == UInt8(ascii: "=") else { throw fail("expected = in inline table") }
            i += 1
            skipSpaces()
            depth += k.count
            try checkDepth()
            let v = try value()
            depth -= k.count
            try Self.insert(into: &table, key: k, value: v, line: keyLine)
            skipSpaces()
            if peek == UInt8(ascii: ",") {
                i += 1
            } else if peek == UInt8(ascii: "}") {
                i += 1
                table.sealed = true
                return .table(table)
            } else if peek == nil {
                // Its values (arrays, multi-line strings) may have moved past the opening line.
                throw TOMLSyntaxError(line: tableLine, message: "unterminated inline table (the file ends before its })")
            } else {
                throw fail("expected , or } in inline table (inline tables stay on one line)")
            }
        }
    }

    // MARK: strings

    mutating func literalString() throws(TOMLSyntaxError) -> String {
        if peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") { return try multiline(quote: UInt8(ascii: "'"), escapes: false) }
        i += 1
        let start = i
        while let c = peek, c != UInt8(ascii: "'") {
            if c == UInt8(ascii: "\n") { throw fail("unterminated string") }
            try checkText(c, in: "a string")
            i += 1
        }
        guard peek != nil else { throw fail("unterminated string") }
        defer { i += 1 }
        return try string(b[start..<i])
    }

    mutating func basicString() throws(TOMLSyntaxError) -> String {
        if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") { return try multiline(quote: UInt8(ascii: "\""), escapes: true) }
        i += 1
        var out: [UInt8] = []
        while let c = peek {
            switch c {
            case UInt8(ascii: "\""):
                i += 1
                return try string(out[...])
            case UInt8(ascii: "\\"):
                try escape(into: &out)
            case UInt8(ascii: "\n"):
                throw fail("unterminated string")
            default:
                try checkText(c, in: "a string")
                out.append(c)
                i += 1
            }
        }
        throw fail("unterminated string")
    }

    private mutating func multiline(quote q: UInt8, escapes: Bool) throws(TOMLSyntaxError) -> String {
        let opened = line
        i += 3
        // A newline right after the opening quotes is not part of the string. A CR counts
        // only as part of CRLF (TOML 1.0); a bare one is refused below as a control character.
        if peek == UInt8(ascii: "\r"), peek(1) == UInt8(ascii: "\n") { i += 1 }
        if peek == UInt8(ascii: "\n") {
            i += 1
            line += 1
        }
        var out: [UInt8] = []
        while let c = peek {
            if c == q, peek(1) == q, peek(2) == q {
                i += 3
                // Up to two more quotes belong to the content (`""""` ends with one quote
                // inside); a third is left over and refused as text after the value.
                for _ in 0..<2 where peek == q {
                    out.append(q)
                    i += 1
                }
                return try string(out[...], opened: opened)
            }
            if escapes && c == UInt8(ascii: "\\") {
                // Line-ending backslash: trim the newline and leading whitespace that follows.
                var j = i + 1
                while j < b.count, b[j] == UInt8(ascii: " ") || b[j] == UInt8(ascii: "\t") { j += 1 }
                if j + 1 < b.count, b[j] == UInt8(ascii: "\r"), b[j + 1] == UInt8(ascii: "\n") { j += 1 }
                if j < b.count, b[j] == UInt8(ascii: "\n") {
                    i = j
                    while let d = peek, d == UInt8(ascii: " ") || d == UInt8(ascii: "\t") || d == UInt8(ascii: "\n")
                        || (d == UInt8(ascii: "\r") && peek(1) == UInt8(ascii: "\n")) {
                        if d == UInt8(ascii: "\n") { line += 1 }
                        i += 1
                    }
                    continue
                }
                guard j < b.count else { break }
                try escape(into: &out)
                continue
            }
            if c == UInt8(ascii: "\n") {
                line += 1
            } else if c != UInt8(ascii: "\r") || peek(1) != UInt8(ascii: "\n") {
                try checkText(c, in: "a string")
            }
            out.append(c)
            i += 1
        }
        throw TOMLSyntaxError(line: opened, message: "unterminated multi-line string (the file ends before its closing quotes)")
    }

    /// A string's bytes as a value, within `TOMLLimits.maxStringLength`. A multi-line
    /// string is named by the line it opened on (`opened`), where the operator must look.
    private func string(_ bytes: some Collection<UInt8>, opened: Int? = nil) throws(TOMLSyntaxError) -> String {
        guard bytes.count <= TOMLLimits.maxStringLength else {
            throw TOMLSyntaxError(line: opened ?? line, message: "a string is longer than \(TOMLLimits.maxStringLength >> 10) KiB")
        }
        return String(decoding: bytes, as: UTF8.self)
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
            // Exactly n hex digits: UInt32(_:radix:) alone would also take a sign.
            guard i + n <= b.count, b[i..<i + n].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }),
                  let v = UInt32(String(decoding: b[i..<i + n], as: UTF8.self), radix: 16),
                  let scalar = Unicode.Scalar(v) else {
                throw fail("invalid unicode escape: \\u takes 4 and \\U 8 hex digits naming a Unicode scalar (not a surrogate)")
            }
            i += n
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            let shown = e >= 0x21 && e < 0x7f ? "\\\(Character(Unicode.Scalar(e)))" : "\\ before \(Self.show(e))"
            throw fail("invalid escape \(shown); TOML 1.0 knows \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX")
        }
    }
}

extension TOMLParser {
    /// Refuses a control character in a string or comment: TOML allows tab there and,
    /// in multi-line strings, line breaks (which the callers let through), nothing else.
    func checkText(_ c: UInt8, in place: String) throws(TOMLSyntaxError) {
        guard (c < 0x20 && c != 0x09) || c == 0x7f else { return }
        throw fail("control character U+\(String(repeating: "0", count: c < 0x10 ? 3 : 2))\(String(c, radix: 16, uppercase: true)) "
            + "in \(place); TOML allows only tab there (write escapes such as \\u0000 in basic strings)")
    }
}
