/// Maps TOML key paths (`tunnel.listen`, `agent[1].allow_ports`) to the line that defines them.
///
/// TOMLKit gives positions only for syntax errors, so validation errors are located by this
/// light scan of the same text: table headers and `key =` lines, counting `[[array]]` entries.
public struct SourceLines: Sendable {
    private var lines: [String: Int] = [:]

    public init(text: String) {
        var table = ""
        var arrayCounts: [String: Int] = [:]
        var depth = 0  // inside a multi-line array value
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let line = raw.drop(while: { $0 == " " || $0 == "\t" })
            if depth > 0 {
                depth += Self.bracketBalance(line)
                continue
            }
            if line.hasPrefix("[[") {
                let name = Self.headerName(line.dropFirst(2))
                let n = arrayCounts[name, default: 0]
                arrayCounts[name] = n + 1
                table = "\(name)[\(n)]"
                lines[table] = lineNumber
            } else if line.hasPrefix("[") {
                table = Self.resolve(Self.headerName(line.dropFirst()), arrayCounts)
                lines[table] = lineNumber
            } else if let eq = Self.keyEnd(line) {
                let key = Self.normalizeKey(line[..<eq])
                let path = table.isEmpty ? key : "\(table).\(key)"
                lines[path] = lineNumber
                depth = max(0, Self.bracketBalance(line[line.index(after: eq)...]))
            }
        }
    }

    /// The line of `path`, else of its closest enclosing table.
    public func line(of path: String) -> Int? {
        var p = Substring(path)
        while true {
            if let l = lines[String(p)] { return l }
            guard let dot = p.lastIndex(of: ".") else { return nil }
            p = p[..<dot]
        }
    }

    private static func headerName(_ s: Substring) -> String {
        let inner = s.prefix(while: { $0 != "]" })
        return normalizeKey(inner)
    }

    /// `[agent.limits]` after the second `[[agent]]` means `agent[1].limits`.
    private static func resolve(_ name: String, _ counts: [String: Int]) -> String {
        let parts = name.split(separator: ".").map(String.init)
        var out: [String] = []
        for part in parts {
            let prefix = (out + [part]).joined(separator: ".")
            if let n = counts[prefix] {
                out.append("\(part)[\(n - 1)]")
            } else {
                out.append(part)
            }
        }
        return out.joined(separator: ".")
    }

    private static func normalizeKey(_ s: Substring) -> String {
        s.split(separator: ".").map { part in
            var p = part.drop(while: { $0 == " " })
            while p.last == " " { p = p.dropLast() }
            if p.count >= 2, p.first == p.last, p.first == "\"" || p.first == "'" {
                p = p.dropFirst().dropLast()
            }
            return String(p)
        }.joined(separator: ".")
    }

    /// Index of the `=` that ends a key, if this line is a `key = value` line.
    private static func keyEnd(_ line: Substring) -> Substring.Index? {
        var quote: Character?
        for i in line.indices {
            let c = line[i]
            if let q = quote {
                if c == q { quote = nil }
                continue
            }
            switch c {
            case "\"", "'": quote = c
            case "=": return i
            case "#": return nil
            default:
                if !(c.isLetter || c.isNumber || c == "_" || c == "-" || c == "." || c == " " || c == "\t") {
                    return nil
                }
            }
        }
        return nil
    }

    private static func bracketBalance(_ s: Substring) -> Int {
        var balance = 0
        var quote: Character?
        for c in s {
            if let q = quote {
                if c == q { quote = nil }
                continue
            }
            switch c {
            case "\"", "'": quote = c
            case "[": balance += 1
            case "]": balance -= 1
            case "#": return balance
            default: break
            }
        }
        return balance
    }
}
