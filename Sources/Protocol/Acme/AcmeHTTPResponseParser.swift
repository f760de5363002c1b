/// Reads one HTTP/1.1 response from the bytes of a connection the client closes after it:
/// Content-Length, chunked or close-delimited bodies, everything capped (an ACME answer is a
/// few KiB; a certificate chain a few more), so a hostile or broken server cannot make the
/// daemon buffer without end.
public struct AcmeHTTPResponseParser: Sendable {
    public enum Progress: Sendable {
        case needMore
        case complete(AcmeHTTPResponse)
    }

    public struct Malformed: Error, Equatable, Sendable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    public static let maxHead = 16 * 1024
    public let maxBody: Int

    private enum Framing: Sendable {
        case length(Int)
        case chunked(ChunkedDecoder)
        case untilClose
    }

    private var buffer: [UInt8] = []
    private var head: (status: Int, headers: [(name: String, value: String)])?
    private var framing: Framing?
    /// A chunked body decoded so far.
    private var body: [UInt8] = []
    /// A HEAD request's response has no body whatever its headers say.
    private let bodyless: Bool

    public init(maxBody: Int = 1 << 20, bodyless: Bool = false) {
        self.maxBody = maxBody
        self.bodyless = bodyless
    }

    public mutating func feed(_ bytes: some Collection<UInt8>) throws(Malformed) -> Progress {
        buffer.append(contentsOf: bytes)
        if head == nil {
            guard let end = Self.headEnd(buffer) else {
                if buffer.count > Self.maxHead { throw Malformed(reason: "response head longer than \(Self.maxHead) bytes") }
                return .needMore
            }
            guard end <= Self.maxHead else { throw Malformed(reason: "response head longer than \(Self.maxHead) bytes") }
            try parseHead(Array(buffer[..<end]))
            buffer.removeFirst(end + 4)
            // 1xx answers are not the response; start over after them.
            if let status = head?.status, status < 200 {
                head = nil
                framing = nil
                return try feed([])
            }
        }
        return try advanceBody()
    }

    /// The connection ended: a close-delimited body is complete, anything else is cut short.
    public mutating func endOfInput() throws(Malformed) -> AcmeHTTPResponse {
        guard let head else { throw Malformed(reason: "connection closed before a complete response head") }
        if case .untilClose = framing { return AcmeHTTPResponse(status: head.status, headers: head.headers, body: buffer) }
        throw Malformed(reason: "connection closed before the end of the response body")
    }

    private mutating func advanceBody() throws(Malformed) -> Progress {
        guard let head, let framing else { return .needMore }
        switch framing {
        case .length(let length):
            guard buffer.count >= length else { return .needMore }
            return .complete(AcmeHTTPResponse(status: head.status, headers: head.headers, body: Array(buffer.prefix(length))))
        case .untilClose:
            if buffer.count > maxBody { throw Malformed(reason: "response body larger than \(maxBody) bytes") }
            return .needMore
        case .chunked(var decoder):
            // The decoder keeps partial lines itself, so every byte fed is consumed and the
            // buffer only ever holds what arrived since the last feed.
            let result: (events: [ChunkedDecoder.Event], consumed: Int)
            do { result = try decoder.feed(buffer) } catch { throw Malformed(reason: "bad chunked body: \(error.reason)") }
            var finished = false
            for event in result.events {
                switch event {
                case .data(let range):
                    body.append(contentsOf: buffer[range])
                    if body.count > maxBody { throw Malformed(reason: "response body larger than \(maxBody) bytes") }
                case .end: finished = true
                }
            }
            buffer.removeFirst(result.consumed)
            self.framing = .chunked(decoder)
            return finished ? .complete(AcmeHTTPResponse(status: head.status, headers: head.headers, body: body)) : .needMore
        }
    }

    private static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    private mutating func parseHead(_ bytes: [UInt8]) throws(Malformed) {
        guard bytes.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) || $0 == 13 || $0 == 10 || $0 >= 128 }) else {
            throw Malformed(reason: "control characters in the response head")
        }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusLine = lines[0].split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1" || statusLine[0] == "HTTP/1.0",
              statusLine[1].count == 3, let status = Int(statusLine[1]), (100...599).contains(status) else {
            throw Malformed(reason: "not an HTTP/1.x status line: \(String(lines[0].prefix(80)).debugDescription)")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                  !line[..<colon].contains(where: { $0 == " " || $0 == "\t" }) else {
                throw Malformed(reason: "malformed header line: \(String(line.prefix(80)).debugDescription)")
            }
            headers.append((line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingSpaces()))
        }
        head = (status, headers)
        if bodyless || status == 204 || status == 304 || status < 200 {
            framing = .length(0)
            return
        }
        let encodings = headers.filter { $0.name == "transfer-encoding" }.map { $0.value.lowercased() }
        let lengths = Set(headers.filter { $0.name == "content-length" }.map(\.value))
        if !encodings.isEmpty {
            guard encodings == ["chunked"] else { throw Malformed(reason: "unsupported Transfer-Encoding \(encodings.joined(separator: ", "))") }
            framing = .chunked(ChunkedDecoder())
        } else if let only = lengths.first {
            guard lengths.count == 1, let length = Int(only), length >= 0 else { throw Malformed(reason: "bad Content-Length") }
            guard length <= maxBody else { throw Malformed(reason: "response body of \(length) bytes is larger than \(maxBody)") }
            framing = .length(length)
        } else {
            framing = .untilClose
        }
    }
}
