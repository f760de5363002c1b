/// A parsed HTTP/1.1 request or response head, as used by the tunnel handshake.
public struct HTTPHead: Equatable, Sendable {
    /// Request: method, target, version. Response: version, status code, reason.
    public var startLine: [String]
    /// Header fields in order; names keep their spelling, look-ups ignore case.
    public var fields: [(name: String, value: String)]

    public init(startLine: [String], fields: [(name: String, value: String)]) {
        self.startLine = startLine
        self.fields = fields
    }

    public subscript(name: String) -> String? {
        fields.first { $0.name.equalsIgnoringASCIICase(name) }?.value
    }

    public func values(_ name: String) -> [String] {
        fields.filter { $0.name.equalsIgnoringASCIICase(name) }.map(\.value)
    }

    /// Comma-separated tokens of a header such as `Connection: keep-alive, Upgrade`, lowercased.
    public func tokens(_ name: String) -> [String] {
        var out: [String] = []
        for field in fields where field.name.equalsIgnoringASCIICase(name) {
            for token in field.value.split(separator: ",") {
                let t = String(token).strippingSpaces().asciiLowercased()
                if !t.isEmpty { out.append(t) }
            }
        }
        return out
    }

    public static func == (a: HTTPHead, b: HTTPHead) -> Bool {
        a.startLine == b.startLine && a.fields.elementsEqual(b.fields, by: { $0 == $1 })
    }

    /// Serialises with CRLF line ends and the blank line that ends a head.
    public func serialized() -> [UInt8] {
        var text = startLine.joined(separator: " ") + "\r\n"
        for field in fields { text += "\(field.name): \(field.value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }
}

/// Accumulates bytes until a complete head, refusing heads over `limit` bytes.
public struct HTTPHeadParser: Sendable {
    public enum Outcome: Equatable, Sendable {
        case needMore
        /// The head, and the bytes that followed it in the same input (they belong to the next layer).
        case complete(HTTPHead, rest: [UInt8])
        case invalid(String)
    }

    public let limit: Int
    private var buffer: [UInt8] = []
    private var scanned = 0

    public init(limit: Int = 8192) {
        self.limit = limit
    }

    public mutating func feed(_ bytes: some Collection<UInt8>) -> Outcome {
        buffer.append(contentsOf: bytes)
        let end = buffer.withUnsafeBytes { Self.headEnd(in: $0, from: scanned - 3) }
        guard let end else {
            scanned = buffer.count
            return buffer.count > limit ? .invalid("header too large (over \(limit) bytes)") : .needMore
        }
        if end > limit { return .invalid("header too large (over \(limit) bytes)") }
        let rest = Array(buffer[end...])
        guard let text = String(validating: buffer[..<end], as: UTF8.self) else {
            return .invalid("header is not valid UTF-8")
        }
        buffer = []
        return Self.parse(text).map { .complete($0, rest: rest) } ?? .invalid("malformed HTTP head")
    }

    static func parse(_ text: String) -> HTTPHead? {
        var text = text
        return text.withUTF8 { parse(bytes: UnsafeRawBufferPointer($0)) }
    }

    static func isTokenChar(_ c: Character) -> Bool {
        guard let b = c.asciiValue else { return false }
        return isTokenByte(b)
    }

    /// RFC 9110 tchar.
    @inline(__always)
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}

extension HTTPHeadParser {
    /// Parses a complete head given as bytes (start line, fields, and the blank line).
    /// Works on bytes so a request costs a few small strings, not a pass over Characters.
    public static func parse(bytes: UnsafeRawBufferPointer) -> HTTPHead? {
        var end = bytes.count
        // Drop the blank line (and any trailing CRLFs).
        while end >= 2 && bytes[end - 1] == 10 && bytes[end - 2] == 13 { end -= 2 }
        var lineStart = 0
        var start: [String]?
        var fields: [(name: String, value: String)] = []
        while lineStart < end {
            var lineEnd = lineStart
            while lineEnd < end && bytes[lineEnd] != 13 { lineEnd += 1 }
            // Every line ends with CRLF; a bare CR or LF is malformed.
            if lineEnd < end && (lineEnd + 1 >= bytes.count || bytes[lineEnd + 1] != 10) { return nil }
            let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd])
            if line.contains(10) { return nil }
            if start == nil {
                guard let s = startLine(line) else { return nil }
                start = s
            } else {
                guard let f = field(line) else { return nil }
                fields.append(f)
            }
            lineStart = lineEnd + 2
        }
        guard let start else { return nil }
        return HTTPHead(startLine: start, fields: fields)
    }

    public static func parse(bytes: [UInt8]) -> HTTPHead? {
        bytes.withUnsafeBytes { parse(bytes: $0) }
    }

    private static func startLine(_ line: UnsafeRawBufferPointer) -> [String]? {
        var parts: [String] = []
        var from = 0
        for i in 0..<line.count where line[i] == 32 && parts.count < 2 {
            parts.append(String(decoding: UnsafeRawBufferPointer(rebasing: line[from..<i]), as: UTF8.self))
            from = i + 1
        }
        guard let last = String(validating: UnsafeRawBufferPointer(rebasing: line[from...]), as: UTF8.self) else { return nil }
        parts.append(last)
        guard parts.count >= 2, parts.count == 3 || !parts.contains(where: \.isEmpty) else { return nil }
        guard parts.prefix(2).allSatisfy({ !$0.isEmpty }) else { return nil }
        return parts
    }

    private static func field(_ line: UnsafeRawBufferPointer) -> (name: String, value: String)? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return nil }
        for i in 0..<colon where !isTokenByte(line[i]) { return nil }
        var from = colon + 1
        var to = line.count
        while from < to && (line[from] == 32 || line[from] == 9) { from += 1 }
        while to > from && (line[to - 1] == 32 || line[to - 1] == 9) { to -= 1 }
        for i in from..<to {
            let b = line[i]
            if b != 9 && (b < 0x20 || b == 0x7f) { return nil }
        }
        guard let value = String(validating: UnsafeRawBufferPointer(rebasing: line[from..<to]), as: UTF8.self) else { return nil }
        return (String(decoding: UnsafeRawBufferPointer(rebasing: line[..<colon]), as: UTF8.self), value)
    }

    /// Where the head in `bytes` ends (just after CRLF CRLF), scanning from `start`.
    public static func headEnd(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var i = max(0, start)
        while i + 3 < bytes.count {
            if bytes[i + 3] != 10 {
                // The last byte of CRLF CRLF is LF: skip ahead when it cannot be here.
                i += bytes[i + 3] == 13 ? 1 : 4
                continue
            }
            if bytes[i] == 13, bytes[i + 1] == 10, bytes[i + 2] == 13 { return i + 4 }
            i += 1
        }
        return nil
    }
}

extension String {
    /// Compares with `other` ignoring ASCII case, without allocating.
    public func equalsIgnoringASCIICase(_ other: String) -> Bool {
        let a = utf8, b = other.utf8
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { x, y in x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= 0x61 && (x | 0x20) <= 0x7a) }
    }

    /// ASCII letters lowercased; the same string when there is nothing to change.
    public func asciiLowercased() -> String {
        guard utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5a }) else { return self }
        return String(decoding: utf8.map { $0 >= 0x41 && $0 <= 0x5a ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
