/// RFC 6455 framing for the WebSocket carrier (DESIGN §2.1): the tunnel's HTTP/2 bytes travel
/// in binary messages whose boundaries mean nothing. The decoder reports where payload bytes
/// lie in its input so the carrier can pass them on as slices (unmasked in place).
public struct WebSocketFrameDecoder: Sendable {
    public enum Event: Equatable, Sendable {
        /// Payload of a binary (or continuation) frame at `range` of the input; XOR it with
        /// `mask` starting at byte `maskOffset` of the key. No mask: the bytes are as sent.
        case data(Range<Int>, mask: [UInt8]?, maskOffset: Int)
        case ping([UInt8])
        case pong
        /// The peer closes; `code` when it gave one.
        case close(code: UInt16?)
    }

    /// A frame the carrier must not accept: answered with close code `code` (RFC 6455 §7.4).
    public struct Violation: Error, Equatable, Sendable {
        public let code: UInt16
        public let reason: String
    }

    private enum State: Sendable {
        case header
        case payload(remaining: UInt64, mask: [UInt8]?, offset: Int)
        /// A control frame's payload, gathered whole (at most 125 bytes).
        case control(opcode: UInt8, remaining: Int, mask: [UInt8]?, bytes: [UInt8])
        case closed
    }

    /// Frames from the peer must be masked (a server reading a client) or must not be.
    public let peerMasks: Bool
    private var state = State.header
    private var header: [UInt8] = []
    /// Inside a fragmented binary message (continuation frames allowed).
    private var inMessage = false

    public init(peerMasks: Bool) {
        self.peerMasks = peerMasks
    }

    /// Decodes all of `input`; every byte is consumed (partial headers are kept inside).
    public mutating func feed(_ input: UnsafeRawBufferPointer) throws(Violation) -> [Event] {
        var events: [Event] = []
        var i = 0
        while i < input.count {
            switch state {
            case .closed:
                return events
            case .header:
                header.append(input[i])
                i += 1
                if let event = try headerComplete() { events.append(event) }
            case .payload(let remaining, let mask, let offset):
                let take = Int(min(remaining, UInt64(input.count - i)))
                events.append(.data(i..<(i + take), mask: mask, maskOffset: offset % 4))
                i += take
                state = UInt64(take) == remaining ? .header : .payload(remaining: remaining - UInt64(take), mask: mask, offset: offset + take)
            case .control(let opcode, let remaining, let mask, var bytes):
                let take = min(remaining, input.count - i)
                bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[i..<(i + take)]))
                i += take
                if take == remaining {
                    let payload = mask.map { WebSocketFrameHeader.masked(bytes, with: $0) } ?? bytes
                    if let event = control(opcode, payload) { events.append(event) }
                } else {
                    state = .control(opcode: opcode, remaining: remaining - take, mask: mask, bytes: bytes)
                }
            }
        }
        return events
    }

    /// Parses the header once it is whole; nil while more header bytes are due.
    private mutating func headerComplete() throws(Violation) -> Event? {
        guard header.count >= 2 else { return nil }
        let masked = header[1] & 0x80 != 0
        let shortLength = header[1] & 0x7f
        let lengthBytes = shortLength == 126 ? 2 : shortLength == 127 ? 8 : 0
        let total = 2 + lengthBytes + (masked ? 4 : 0)
        guard header.count >= total else { return nil }

        let fin = header[0] & 0x80 != 0
        let opcode = header[0] & 0x0f
        guard header[0] & 0x70 == 0 else { throw Violation(code: 1002, reason: "reserved bits set (no extension was negotiated)") }
        guard masked == peerMasks else {
            throw Violation(code: 1002, reason: peerMasks ? "client frame not masked" : "server frame masked")
        }
        var length = UInt64(shortLength)
        if lengthBytes > 0 {
            length = header[2..<(2 + lengthBytes)].reduce(0) { $0 << 8 | UInt64($1) }
            guard length >> 63 == 0 else { throw Violation(code: 1002, reason: "frame length over 2^63") }
        }
        let mask = masked ? Array(header[(2 + lengthBytes)..<total]) : nil
        header.removeAll(keepingCapacity: true)

        switch opcode {
        case 0x0, 0x2:
            guard opcode == 0x2 ? !inMessage : inMessage else {
                throw Violation(code: 1002, reason: opcode == 0 ? "continuation without a message" : "new message inside a fragmented one")
            }
            inMessage = !fin
            state = length == 0 ? .header : .payload(remaining: length, mask: mask, offset: 0)
            return nil
        case 0x1:
            throw Violation(code: 1003, reason: "text frame on a binary carrier")
        case 0x8, 0x9, 0xA:
            guard fin, length <= 125 else { throw Violation(code: 1002, reason: "fragmented or oversized control frame") }
            if length == 0 { return control(opcode, []) }
            state = .control(opcode: opcode, remaining: Int(length), mask: mask, bytes: [])
            return nil
        default:
            throw Violation(code: 1002, reason: "unknown opcode \(opcode)")
        }
    }

    private mutating func control(_ opcode: UInt8, _ payload: [UInt8]) -> Event? {
        state = .header
        switch opcode {
        case 0x9: return .ping(payload)
        case 0xA: return .pong
        default:
            state = .closed
            return .close(code: payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil)
        }
    }
}

/// Frame headers the carrier writes.
public enum WebSocketFrameHeader {
    public static let binary: UInt8 = 0x2
    public static let close: UInt8 = 0x8
    public static let ping: UInt8 = 0x9
    public static let pong: UInt8 = 0xA

    /// The header of a final frame of `opcode` with `length` payload bytes, masked with `mask`
    /// when given (a client must mask, RFC 6455 §5.3).
    public static func bytes(opcode: UInt8, length: Int, mask: [UInt8]?) -> [UInt8] {
        var out: [UInt8] = [0x80 | opcode]
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        switch length {
        case 0...125:
            out.append(maskBit | UInt8(length))
        case 126...0xffff:
            out.append(maskBit | 126)
            out += [UInt8(length >> 8), UInt8(length & 0xff)]
        default:
            out.append(maskBit | 127)
            out += (0..<8).reversed().map { UInt8(truncatingIfNeeded: UInt64(length) >> (8 * $0)) }
        }
        if let mask { out += mask }
        return out
    }

    /// A whole control frame (ping, pong, close) with its payload, masked when `mask` is given.
    public static func control(opcode: UInt8, payload: [UInt8], mask: [UInt8]?) -> [UInt8] {
        let body = mask.map { masked(payload, with: $0) } ?? payload
        return bytes(opcode: opcode, length: payload.count, mask: mask) + body
    }

    /// `bytes` XORed with the 4-byte `mask` (RFC 6455 §5.3): masks, and unmasks again.
    public static func masked(_ bytes: [UInt8], with mask: [UInt8]) -> [UInt8] {
        bytes.enumerated().map { $0.element ^ mask[$0.offset % 4] }
    }

    /// A close frame's payload: the code, big-endian.
    public static func closePayload(_ code: UInt16) -> [UInt8] {
        [UInt8(code >> 8), UInt8(code & 0xff)]
    }
}
