import COpenSSL

/// A TLS failure an operator can act on: what failed and, for certificates, why.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable {
        case configuration, handshake, verification, protocolError
    }

    private let code: Code
    public let message: String

    public var description: String { message }

    static func configuration(_ m: String) -> TLSError { TLSError(code: .configuration, message: m) }
    static func handshake(_ m: String) -> TLSError { TLSError(code: .handshake, message: "TLS handshake failed: \(m)") }
    static func verification(_ m: String) -> TLSError {
        TLSError(code: .verification, message: "TLS certificate verification failed: \(m)")
    }
    static func protocolError(_ m: String) -> TLSError { TLSError(code: .protocolError, message: "TLS error: \(m)") }

    /// Drains OpenSSL's thread-local error queue into one readable line.
    static func drainOpenSSLErrors() -> String {
        var parts: [String] = []
        while true {
            let e = ERR_get_error()
            if e == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, buf.count)
            parts.append(String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return parts.isEmpty ? "unknown error" : parts.joined(separator: "; ")
    }
}
