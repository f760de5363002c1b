/// What one configuration file may hold. A daemon re-reads its file on every reload, so no
/// file, however large or deeply nested, may exhaust its stack or memory (DESIGN §9). The
/// bounds sit far above what a real configuration needs.
public enum TOMLLimits {
    /// Bytes in one file: 50,000 `[[agent]]` entries of 80 bytes (name, token file, a port) fit.
    public static let maxFileSize = 4 << 20
    /// Levels of nesting a key = value may reach, counting every part of its table header,
    /// every part of its dotted key, and every array and inline table around it. The parser
    /// recurses once per array or inline table level; this keeps that recursion (and the
    /// tree it builds) shallow, whatever the file holds.
    public static let maxDepth = 32
    /// Bytes in one key (one part of a dotted key).
    public static let maxKeyLength = 1024
    /// Bytes in one string value.
    public static let maxStringLength = 64 << 10
    /// Unicode scalars of a key or value an error message quotes, so a hostile file cannot
    /// turn one error into a megabyte log record or control reply.
    static let maxQuoted = 64
}

extension String {
    /// At most `head` + `tail` Unicode scalars (not Characters: one Character may hold any
    /// number of combining scalars), the cut marked with "…".
    func clipped(head: Int, tail: Int = 0) -> String {
        let scalars = unicodeScalars
        guard scalars.count > head + tail else { return self }
        var out = String(String.UnicodeScalarView(scalars.prefix(head))) + "…"
        if tail > 0 { out += String(String.UnicodeScalarView(scalars.suffix(tail))) }
        return out
    }
}

/// Turns a file's bytes into text before parsing: too large and not UTF-8 are refused with
/// the line they concern, like every other error in the file.
public enum TOMLInput {
    public static func text(of bytes: [UInt8]) -> Result<String, TOMLSyntaxError> {
        if let error = sizeError(bytes) { return .failure(error) }
        if let text = String(validating: bytes, as: UTF8.self) { return .success(text) }
        let offset = firstInvalidUTF8(bytes) ?? 0
        let lineStart = bytes[..<offset].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        return .failure(TOMLSyntaxError(
            line: line(at: offset, in: bytes),
            message: "invalid UTF-8 at column \(offset - lineStart + 1) (byte 0x\(String(bytes[offset], radix: 16))); "
                + "save the file as UTF-8"))
    }

    /// Refuses a file over `TOMLLimits.maxFileSize` at the line that passes the limit.
    static func sizeError(_ bytes: [UInt8]) -> TOMLSyntaxError? {
        guard bytes.count > TOMLLimits.maxFileSize else { return nil }
        return TOMLSyntaxError(
            line: line(at: TOMLLimits.maxFileSize, in: bytes),
            message: "the file is larger than \(TOMLLimits.maxFileSize >> 20) MiB (\(TOMLLimits.maxFileSize) bytes), "
                + "the most a configuration may hold; this line passes that limit")
    }

    /// 1-based line of the byte at `offset`.
    static func line(at offset: Int, in bytes: [UInt8]) -> Int {
        var line = 1
        for byte in bytes[..<min(offset, bytes.count)] where byte == UInt8(ascii: "\n") { line += 1 }
        return line
    }

    /// Offset of the first byte that starts no valid UTF-8 sequence (overlong forms,
    /// surrogates and truncated sequences included); nil for valid input.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }
}
