extension BasicCredentials {
    /// `Basic <base64(user:password)>`, the value of an `Authorization` or
    /// `Proxy-Authorization` field (RFC 7617 §2): what `parse` reads back.
    public var fieldValue: String {
        "Basic " + Self.base64Encode(Array("\(user):\(password)".utf8))
    }

    /// RFC 4648 base64 with padding.
    static func base64Encode(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let chunk = UInt32(bytes[i]) << 16 | UInt32(n > 1 ? bytes[i + 1] : 0) << 8 | UInt32(n > 2 ? bytes[i + 2] : 0)
            for k in 0..<4 {
                out.append(k <= n ? alphabet[Int(chunk >> UInt32(18 - 6 * k) & 63)] : UInt8(ascii: "="))
            }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
