/// Reads the PROXY header (haproxy's proxy-protocol.txt, versions 1 and 2) that a trusted
/// load balancer sends first on a connection, from bytes as they arrive. The version is told
/// by the first byte (`P` for the text form, CR for the binary signature); bytes that cannot
/// begin either are refused at once, and so is anything over the bounds below, so a
/// connection holds at most `maxV2Size` bytes before it is either attributed or closed.
public struct ProxyHeaderParser: Sendable {
    /// Version 1: the longest line the specification allows, CRLF included.
    public static let maxV1Size = 107
    /// Version 2: the 16-byte fixed part plus at most this many bytes of addresses and TLVs.
    /// Balancers send tens of bytes (AWS and GCP add one small TLV); 2 KiB leaves room for
    /// haproxy's TLS TLVs with a client certificate's names.
    public static let maxV2Body = 2048
    public static let maxV2Size = 16 + maxV2Body

    public enum Outcome: Equatable, Sendable {
        /// Not enough bytes yet; feed more.
        case needMore
        /// The header, and the bytes after it (the client's first bytes).
        case header(ProxyHeader, rest: [UInt8])
        case refused(ProxyHeaderError)
    }

    static let v1Prefix = Array("PROXY ".utf8)
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    private var buffer: [UInt8] = []
    private var finished = false

    public init() {}

    /// Takes the next bytes from the connection. After `.header` or `.refused` the parser is
    /// done and further calls refuse.
    public mutating func feed<C: Collection>(_ bytes: C) -> Outcome where C.Element == UInt8 {
        guard !finished else { return .refused(.init(.alreadyFinished)) }
        buffer.append(contentsOf: bytes)
        let outcome = parse()
        if outcome != .needMore {
            finished = true
            buffer = []
        }
        return outcome
    }

    private func parse() -> Outcome {
        guard let first = buffer.first else { return .needMore }
        switch first {
        case Self.v1Prefix[0]: return parseV1()
        case Self.v2Signature[0]: return parseV2()
        default: return .refused(.init(.notAHeader))
        }
    }

    // MARK: version 1

    private func parseV1() -> Outcome {
        let n = min(buffer.count, Self.v1Prefix.count)
        guard buffer[0..<n].elementsEqual(Self.v1Prefix[0..<n]) else { return .refused(.init(.notAHeader)) }
        let window = min(buffer.count, Self.maxV1Size)
        var end: Int?
        var i = 0
        while i < window {
            let b = buffer[i]
            if b == 0x0D {
                guard i + 1 < buffer.count else { break }
                guard buffer[i + 1] == 0x0A else { return .refused(.init(.v1Malformed("a CR not followed by LF"))) }
                guard i + 2 <= Self.maxV1Size else { return .refused(.init(.v1TooLong)) }
                end = i
                break
            }
            // Printable ASCII only: a NUL or LF inside the line is not a header.
            guard b >= 0x20 && b < 0x7F else { return .refused(.init(.v1Malformed("a control byte in the line"))) }
            i += 1
        }
        guard let end else {
            return buffer.count >= Self.maxV1Size ? .refused(.init(.v1TooLong)) : .needMore
        }
        let rest = Array(buffer[(end + 2)...])
        switch Self.v1Addresses(buffer[Self.v1Prefix.count..<end]) {
        case .success(let addresses): return .header(ProxyHeader(version: .v1, addresses: addresses), rest: rest)
        case .failure(let e): return .refused(e)
        }
    }

    /// `TCP4 src dst sport dport`, `TCP6 …`, or `UNKNOWN` (anything may follow it).
    static func v1Addresses(_ line: ArraySlice<UInt8>) -> Result<ProxyHeader.Addresses, ProxyHeaderError> {
        func no(_ why: String) -> Result<ProxyHeader.Addresses, ProxyHeaderError> { .failure(.init(.v1Malformed(why))) }
        let fields = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard let proto = fields.first.map({ String(decoding: $0, as: UTF8.self) }) else { return no("no protocol") }
        if proto == "UNKNOWN" { return .success(.unknown) }
        guard proto == "TCP4" || proto == "TCP6" else { return no("protocol \"\(proto)\" is not TCP4, TCP6 or UNKNOWN") }
        guard fields.count == 5 else { return no("\(proto) needs exactly four fields, each after one space") }
        let family: IPAddress.Family = proto == "TCP4" ? .v4 : .v6
        let texts = fields[1...].map { String(decoding: $0, as: UTF8.self) }
        guard let source = IPAddress(texts[0]), let destination = IPAddress(texts[1]),
              source.family == family, destination.family == family else {
            return no("addresses are not \(family == .v4 ? "IPv4" : "IPv6") addresses")
        }
        guard let sourcePort = port(texts[2]), let destinationPort = port(texts[3]) else {
            return no("ports must be decimal numbers from 0 to 65535 without leading zeros")
        }
        return .success(.proxied(
            source: IPEndpoint(address: source, port: sourcePort),
            destination: IPEndpoint(address: destination, port: destinationPort)))
    }

    private static func port(_ text: String) -> UInt16? {
        let utf8 = text.utf8
        guard (1...5).contains(utf8.count), utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        if utf8.count > 1 && utf8.first == 0x30 { return nil }
        return UInt16(text)
    }

    // MARK: version 2

    private func parseV2() -> Outcome {
        let n = min(buffer.count, Self.v2Signature.count)
        guard buffer[0..<n].elementsEqual(Self.v2Signature[0..<n]) else { return .refused(.init(.notAHeader)) }
        guard buffer.count >= 16 else { return .needMore }
        let versionCommand = buffer[12], familyTransport = buffer[13]
        guard versionCommand >> 4 == 2 else { return .refused(.init(.v2Malformed("version \(versionCommand >> 4) is not 2"))) }
        let command = versionCommand & 0x0F
        guard command <= 1 else { return .refused(.init(.v2Malformed("unknown command \(command)"))) }
        let family = familyTransport >> 4, transport = familyTransport & 0x0F
        guard family <= 3, transport <= 2 else {
            return .refused(.init(.v2Malformed("unknown address family or transport 0x\(String(familyTransport, radix: 16))")))
        }
        let length = Int(buffer[14]) << 8 | Int(buffer[15])
        guard length <= Self.maxV2Body else { return .refused(.init(.v2TooLong(length))) }
        guard buffer.count >= 16 + length else { return .needMore }
        let body = buffer[16..<(16 + length)]
        let rest = Array(buffer[(16 + length)...])
        func header(_ a: ProxyHeader.Addresses) -> Outcome { .header(ProxyHeader(version: .v2, addresses: a), rest: rest) }
        // LOCAL: the balancer's own connection (a health check); the body is ignored.
        if command == 0 { return header(.local) }
        if transport == 2 { return .refused(.init(.v2Malformed("a datagram (DGRAM) header on a stream connection"))) }
        // UNSPEC or AF_UNIX, or an unspecified transport: no client named, so the socket's
        // addresses stand.
        guard transport == 1, family == 1 || family == 2 else { return header(.unknown) }
        let size = family == 1 ? 4 : 16
        guard length >= 2 * size + 4 else {
            return .refused(.init(.v2Malformed("\(length) bytes are too few for \(family == 1 ? "IPv4" : "IPv6") addresses")))
        }
        let start = body.startIndex
        guard Self.tlvsFit(body[(start + 2 * size + 4)...]) else {
            return .refused(.init(.v2Malformed("a TLV runs past the end of the header")))
        }
        let source = IPAddress(bytes: Array(body[start..<(start + size)]))!
        let destination = IPAddress(bytes: Array(body[(start + size)..<(start + 2 * size)]))!
        let ports = start + 2 * size
        let sourcePort = UInt16(body[ports]) << 8 | UInt16(body[ports + 1])
        let destinationPort = UInt16(body[ports + 2]) << 8 | UInt16(body[ports + 3])
        return header(.proxied(
            source: IPEndpoint(address: source, port: sourcePort),
            destination: IPEndpoint(address: destination, port: destinationPort)))
    }

    /// Whether the TLVs after the addresses tile their space exactly (type, 2-byte length,
    /// value). Their contents are not used: they are skipped, never trusted.
    static func tlvsFit(_ tlvs: ArraySlice<UInt8>) -> Bool {
        var i = tlvs.startIndex
        while i < tlvs.endIndex {
            guard tlvs.endIndex - i >= 3 else { return false }
            let length = Int(tlvs[i + 1]) << 8 | Int(tlvs[i + 2])
            guard tlvs.endIndex - (i + 3) >= length else { return false }
            i += 3 + length
        }
        return true
    }
}

/// Why a PROXY header was refused; `description` is for the log, `reason` for stats labels.
public struct ProxyHeaderError: Error, Equatable, Sendable, CustomStringConvertible {
    enum Code: Equatable, Sendable {
        case notAHeader
        case v1TooLong
        case v1Malformed(String)
        case v2TooLong(Int)
        case v2Malformed(String)
        case alreadyFinished
    }

    let code: Code

    init(_ code: Code) { self.code = code }

    public var description: String {
        switch code {
        case .notAHeader: return "the connection did not start with a PROXY header (v1 \"PROXY \" or the v2 signature)"
        case .v1TooLong: return "PROXY v1 line without CRLF within \(ProxyHeaderParser.maxV1Size) bytes"
        case .v1Malformed(let why): return "malformed PROXY v1 header: \(why)"
        case .v2TooLong(let n): return "PROXY v2 header of \(n) bytes is over the limit of \(ProxyHeaderParser.maxV2Body)"
        case .v2Malformed(let why): return "malformed PROXY v2 header: \(why)"
        case .alreadyFinished: return "the PROXY header was already read"
        }
    }
}
