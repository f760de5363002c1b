/// The answer to one control request: `OK <n>\n` followed by exactly n bytes of UTF-8, or
/// `ERR <code> <message>\n` (DESIGN §4).
public enum ControlReply: Equatable, Sendable {
    case ok(String)
    case error(ControlError)

    public func encoded() -> [UInt8] {
        switch self {
        case .ok(let body):
            let b = Array(body.utf8)
            return Array("OK \(b.count)\n".utf8) + b
        case .error(let e):
            // The message must stay on one line whatever it quotes.
            let one = e.message.map { $0 == "\n" || $0 == "\r" ? " " : $0 }
            return Array("ERR \(e.code) \(String(one))\n".utf8)
        }
    }
}

/// Reads replies from a byte stream (the client side, `fastgwctl`).
public struct ControlReplyParser: Sendable {
    private var buffer: [UInt8] = []
    private var expected: Int?

    public init() {}

    public struct Malformed: Error, Equatable, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Appends bytes and returns the first complete reply, if there is one now.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(Malformed) -> ControlReply? {
        buffer += bytes
        return try next()
    }

    public mutating func next() throws(Malformed) -> ControlReply? {
        if let n = expected {
            guard buffer.count >= n else { return nil }
            let body = String(decoding: buffer[0..<n], as: UTF8.self)
            buffer.removeFirst(n)
            expected = nil
            return .ok(body)
        }
        guard let nl = buffer.firstIndex(of: 10) else {
            if buffer.count > 8192 { throw Malformed(description: "reply line too long") }
            return nil
        }
        var line = String(decoding: buffer[0..<nl], as: UTF8.self)
        buffer.removeFirst(nl + 1)
        if line.hasSuffix("\r") { line.removeLast() }
        if line.hasPrefix("OK ") {
            guard let n = Int(line.dropFirst(3)), n >= 0 else { throw Malformed(description: "bad OK line: \(line)") }
            expected = n
            return try next()
        }
        if line.hasPrefix("ERR ") {
            let rest = line.dropFirst(4)
            let code = rest.prefix { $0 != " " }
            guard let c = Int(code) else { throw Malformed(description: "bad ERR line: \(line)") }
            return .error(ControlError(code: c, message: String(rest.dropFirst(code.count).drop { $0 == " " })))
        }
        throw Malformed(description: "unexpected reply line: \(line)")
    }
}
