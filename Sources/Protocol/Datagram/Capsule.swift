/// HTTP Datagrams in capsules (RFC 9297 §3.2), as `connect-udp` streams carry them
/// (RFC 9298 §5): each UDP payload is one DATAGRAM capsule (type 0x00) whose value is a
/// context id (0: a whole UDP payload) and the payload. Type and length are QUIC variable-
/// length integers (RFC 9000 §16), so a datagram's boundaries survive the byte stream.
public enum Capsule {
    public static let datagramType: UInt64 = 0x00
    /// The largest UDP payload (65,535 − 8: IPv6; IPv4 allows 65,507); a longer DATAGRAM capsule is
    /// refused, so no peer makes the decoder buffer more than this.
    public static let maxDatagramPayload = 65_527
    /// A DATAGRAM capsule's longest value: context id 0 (one byte) and the largest payload.
    public static let maxDatagramValue = maxDatagramPayload + 1
    /// Type (1 byte for 0x00) and length (4 bytes past 16,383) of a DATAGRAM capsule's head.
    public static let maxDatagramHeader = 1 + 4 + 1

    /// The bytes before a payload of `length` bytes: type 0x00, the value's length, context id 0.
    public static func datagramHeader(payloadLength length: Int) -> [UInt8] {
        precondition(length >= 0 && length <= maxDatagramPayload, "datagram of \(length) bytes")
        var out: [UInt8] = [0x00]
        QUICVarint.append(UInt64(length + 1), to: &out)
        out.append(0x00)
        return out
    }

    /// Writes the same bytes as `datagramHeader` at the start of `out` (at least
    /// `maxDatagramHeader` bytes) without allocating; returns how many were written.
    public static func writeDatagramHeader(payloadLength length: Int, into out: UnsafeMutableRawBufferPointer) -> Int {
        precondition(length >= 0 && length <= maxDatagramPayload && out.count >= maxDatagramHeader, "datagram of \(length) bytes")
        let value = UInt32(length + 1)
        out[0] = 0x00
        var at = 1
        switch value {
        case ..<(1 << 6):
            out[1] = UInt8(value)
            at = 2
        case ..<(1 << 14):
            out[1] = 0x40 | UInt8(value >> 8)
            out[2] = UInt8(value & 0xff)
            at = 3
        default:
            out[1] = 0x80 | UInt8(value >> 24)
            out[2] = UInt8(truncatingIfNeeded: value >> 16)
            out[3] = UInt8(truncatingIfNeeded: value >> 8)
            out[4] = UInt8(truncatingIfNeeded: value)
            at = 5
        }
        out[at] = 0x00
        return at + 1
    }

    /// One DATAGRAM capsule carrying `payload` (tests, fuzz seeds).
    public static func datagram(_ payload: [UInt8]) -> [UInt8] {
        datagramHeader(payloadLength: payload.count) + payload
    }
}

/// QUIC variable-length integers: the top two bits of the first byte give the length (1,
/// 2, 4 or 8 bytes), the rest the value, big-endian, up to 2^62 − 1.
public enum QUICVarint {
    public static let max: UInt64 = (1 << 62) - 1

    public static func append(_ value: UInt64, to out: inout [UInt8]) {
        precondition(value <= max, "varint \(value) out of range")
        switch value {
        case ..<(1 << 6): out.append(UInt8(value))
        case ..<(1 << 14): out += [0x40 | UInt8(value >> 8), UInt8(value & 0xff)]
        case ..<(1 << 30): out += (0..<4).map { i in UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt64(i))) | (i == 0 ? 0x80 : 0) }
        default: out += (0..<8).map { i in UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64(i))) | (i == 0 ? 0xc0 : 0) }
        }
    }

    /// The value at the start of `bytes` and its length; nil when `bytes` ends inside it.
    public static func read(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> (value: UInt64, length: Int)? {
        guard offset < bytes.count else { return nil }
        let first = bytes[offset]
        let length = 1 << Int(first >> 6)
        guard bytes.count - offset >= length else { return nil }
        var value = UInt64(first & 0x3f)
        for i in 1..<length { value = value << 8 | UInt64(bytes[offset + i]) }
        return (value, length)
    }
}
