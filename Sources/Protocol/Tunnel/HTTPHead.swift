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
        let lower = name.lowercased()
        return fields.first { $0.name.lowercased() == lower }?.value
    }

    public func values(_ name: String) -> [String] {
        let lower = name.lowercased()
        return fields.filter { $0.name.lowercased() == lower }.map(\.value)
    }

    /// Comma-separated tokens of a header such as `Connection: keep-alive, Upgrade`, lowercased.
    public func tokens(_ name: String) -> [String] {
        values(name).flatMap { $0.split(separator: ",") }.map {
            String($0).strippingSpaces().lowercased()
        }
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
        let end = Self.findHeadEnd(buffer, from: max(0, scanned - 3))
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

    static func findHeadEnd(_ b: [UInt8], from start: Int) -> Int? {
        guard b.count >= 4 else { return nil }
        var i = start
        while i + 3 < b.count {
            if b[i] == 13, b[i + 1] == 10, b[i + 2] == 13, b[i + 3] == 10 { return i + 4 }
            i += 1
        }
        return nil
    }

    static func parse(_ text: String) -> HTTPHead? {
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let first = lines.first else { return nil }
        let start = first.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard start.count >= 2, !start.contains(where: { $0.isEmpty }) || start.count == 3 else { return nil }
        var fields: [(String, String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = String(line[..<colon])
            guard !name.isEmpty, name.allSatisfy(Self.isTokenChar) else { return nil }
            let value = String(line[line.index(after: colon)...]).strippingSpaces()
            guard value.utf8.allSatisfy({ $0 == 9 || ($0 >= 0x20 && $0 != 0x7f) }) else { return nil }
            fields.append((name, value))
        }
        return HTTPHead(startLine: start, fields: fields)
    }

    static func isTokenChar(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || "!#$%&'*+-.^_`|~".contains(c))
    }
}

extension HTTPHeadParser {
    /// Parses a complete head given as bytes (start line, fields, and the blank line).
    public static func parse(bytes: some Collection<UInt8>) -> HTTPHead? {
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        return parse(text)
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
