/// Incremental decoder of the chunked transfer coding (RFC 9112 §7.1). It reports where the
/// data of each chunk lies in the input it is given, so a caller can pass those bytes on
/// without copying, and refuses anything malformed: a size that is not hexadecimal or too
/// large, a missing CRLF, an oversized line or trailer section.
public struct ChunkedDecoder: Sendable {
    public enum Event: Equatable, Sendable {
        /// Body bytes: this range of the input just fed.
        case data(Range<Int>)
        /// The trailer fields after the last chunk (often none), then the body is complete.
        case end(trailers: [HeaderLine])
    }

    public struct HeaderLine: Equatable, Sendable {
        public let name: String
        public let value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public struct Malformed: Error, Equatable, Sendable {
        public let reason: String
    }

    private enum State: Sendable {
        case size
        case data(remaining: Int)
        case dataCR
        case dataLF
        case trailers
        case done
    }

    /// Longest chunk-size line (size and extensions) and trailer section accepted.
    public static let maxLine = 4096
    public static let maxTrailers = 8192

    private var state = State.size
    private var line: [UInt8] = []
    private var trailerBytes: [UInt8] = []

    public init() {}

    public var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// Decodes `input`; bytes after the end of the body are left for the caller (the range
    /// `consumed..<input.endIndex`).
    public mutating func feed<C: RandomAccessCollection<UInt8>>(_ input: C) throws(Malformed) -> (events: [Event], consumed: Int)
    where C.Index == Int {
        var events: [Event] = []
        var i = input.startIndex
        while i < input.endIndex {
            switch state {
            case .size:
                let byte = input[i]
                i += 1
                if byte == 0x0A {
                    guard line.last == 0x0D else { throw Malformed(reason: "chunk size line not ended by CRLF") }
                    line.removeLast()
                    let size = try Self.size(of: line)
                    line.removeAll(keepingCapacity: true)
                    state = size == 0 ? .trailers : .data(remaining: size)
                } else {
                    line.append(byte)
                    if line.count > Self.maxLine { throw Malformed(reason: "chunk size line too long") }
                }
            case .data(let remaining):
                let take = min(remaining, input.endIndex - i)
                events.append(.data(i..<(i + take)))
                i += take
                state = remaining == take ? .dataCR : .data(remaining: remaining - take)
            case .dataCR:
                guard input[i] == 0x0D else { throw Malformed(reason: "chunk data not followed by CRLF") }
                i += 1
                state = .dataLF
            case .dataLF:
                guard input[i] == 0x0A else { throw Malformed(reason: "chunk data not followed by CRLF") }
                i += 1
                state = .size
            case .trailers:
                trailerBytes.append(input[i])
                i += 1
                if trailerBytes.count > Self.maxTrailers { throw Malformed(reason: "trailer section too large") }
                if let fields = try Self.trailerSection(trailerBytes) {
                    events.append(.end(trailers: fields))
                    trailerBytes = []
                    state = .done
                    return (events, i)
                }
            case .done:
                return (events, i)
            }
        }
        return (events, i)
    }

    /// chunk-size = 1*HEXDIG, then optional `;ext` (ignored).
    static func size(of line: [UInt8]) throws(Malformed) -> Int {
        let digits = line.prefix { $0 != 0x3B }  // ';'
        guard !digits.isEmpty else { throw Malformed(reason: "empty chunk size") }
        guard digits.count <= 15 else { throw Malformed(reason: "chunk size too large") }
        var n = 0
        for d in digits {
            let v: Int
            switch d {
            case 0x30...0x39: v = Int(d - 0x30)
            case 0x41...0x46: v = Int(d - 0x41 + 10)
            case 0x61...0x66: v = Int(d - 0x61 + 10)
            default: throw Malformed(reason: "chunk size is not hexadecimal")
            }
            n = n * 16 + v
        }
        return n
    }

    /// The trailer fields once the section (ending in an empty line) is complete, else nil.
    static func trailerSection(_ bytes: [UInt8]) throws(Malformed) -> [HeaderLine]? {
        if bytes.last == 0x0A, bytes.count < 2 || bytes[bytes.count - 2] != 0x0D {
            throw Malformed(reason: "trailer line not ended by CRLF")
        }
        if bytes == [0x0D, 0x0A] { return [] }
        guard bytes.count >= 4, bytes.suffix(4).elementsEqual([0x0D, 0x0A, 0x0D, 0x0A]) else { return nil }
        let text = String(decoding: bytes.dropLast(4), as: UTF8.self)
        var fields: [HeaderLine] = []
        for raw in text.split(separator: "\r\n", omittingEmptySubsequences: false) {
            guard let colon = raw.firstIndex(of: ":"), colon != raw.startIndex,
                  !raw[..<colon].contains(where: { $0 == " " || $0 == "\t" })
            else { throw Malformed(reason: "malformed trailer field") }
            fields.append(HeaderLine(name: String(raw[..<colon]), value: String(raw[raw.index(after: colon)...]).strippingSpaces()))
        }
        return fields
    }
}
