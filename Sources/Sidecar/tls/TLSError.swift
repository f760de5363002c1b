import COpenSSL

/// A TLS failure an operator can act on: what failed and, for certificates, why.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable {
        case configuration, handshake, verification, protocolError
    }

    private let code: Code
    public let message: String
    /// The certificate, key or CA file a configuration error is about, when there is one.
    public let file: String?

    public var description: String { message }

    static func configuration(_ m: String, file: String? = nil) -> TLSError {
        TLSError(code: .configuration, message: m, file: file)
    }
    static func handshake(_ m: String) -> TLSError {
        TLSError(code: .handshake, message: "TLS handshake failed: \(m)", file: nil)
    }
    static func verification(_ m: String) -> TLSError {
        TLSError(code: .verification, message: "TLS certificate verification failed: \(m)", file: nil)
    }
    static func protocolError(_ m: String) -> TLSError { TLSError(code: .protocolError, message: "TLS error: \(m)", file: nil) }

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
