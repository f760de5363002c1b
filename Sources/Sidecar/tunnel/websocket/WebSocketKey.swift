import COpenSSL
import Protocol

/// The WebSocket carrier's handshake values (RFC 6455 §4): the agent's random key and the
/// accept value the gateway derives from it (SHA-1, base64), both through OpenSSL.
enum WebSocketKey {
    /// 16 random bytes in base64.
    static func make() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        if RAND_bytes(&bytes, 16) != 1 {
            // Not a secret (it only proves the peer speaks WebSocket): any bytes do.
            bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
        }
        return base64(bytes)
    }

    static func accept(for key: String) -> String {
        let input = Array((key + TunnelHandshake.websocketGUID).utf8)
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = EVP_Digest(input, input.count, &digest, &length, EVP_sha1(), nil)
        return base64(Array(digest.prefix(Int(length))))
    }

    private static func base64(_ bytes: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: (bytes.count + 2) / 3 * 4 + 1)
        let n = EVP_EncodeBlock(&out, bytes, Int32(bytes.count))
        return String(decoding: out.prefix(Int(n)), as: UTF8.self)
    }
}
