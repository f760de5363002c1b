/// HTTP/2 tunnel parameters both daemons share (DESIGN §2.3).
public struct TunnelTuning: Equatable, Sendable {
    public var keepaliveInterval: Duration = .seconds(15)
    public var keepaliveTimeout: Duration = .seconds(10)
    /// Receive window of the whole tunnel connection; bounds what a peer may have in flight.
    public var connectionWindow: Int = 32 << 20
    /// Receive window of one stream; a single stream can reach full speed on a 50 ms path.
    public var streamWindow: Int = 4 << 20
    /// Above this many unsent bytes on a stream, its source socket stops being read.
    public var sendWatermark: Int = 256 << 10

    public init() {}

    mutating func read(from t: inout TableReader) {
        if let d = t.duration("keepalive_interval") { keepaliveInterval = d }
        if let d = t.duration("keepalive_timeout") { keepaliveTimeout = d }
        // nghttp2 windows are 31-bit; 64 KiB is the protocol's initial window.
        if let n = t.size("connection_window", range: 65535...(1 << 31 - 1)) { connectionWindow = n }
        if let n = t.size("stream_window", range: 65535...(1 << 31 - 1)) { streamWindow = n }
        if let n = t.size("send_watermark", range: 16384...(64 << 20)) { sendWatermark = n }
        if keepaliveInterval <= .zero { t.error("keepalive_interval", "keepalive_interval must be positive") }
        if keepaliveTimeout <= .zero { t.error("keepalive_timeout", "keepalive_timeout must be positive") }
    }
}

/// Names that travel in `:authority` and log fields: keep them to a safe alphabet.
enum Names {
    static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { c in
            c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_" || c == ".")
        }
    }

    static let rule = "use 1-64 characters from A-Z a-z 0-9 . _ -"
}

/// Reads a secret given either inline (`token`) or from a file (`token_file`), never both.
enum Secrets {
    static let minimumLength = 16

    /// A gateway's `[[agent]]` credential: `token` / `token_file` as for an agent, or
    /// `token_sha256` (the hex SHA-256 of the token, `fastgw token new` prints it) so that the
    /// gateway never holds the token itself; returned as `sha256:<lower-case hex>`.
    static func grantCredential(
        _ t: inout TableReader, readFile: (String) throws -> String
    ) -> String? {
        guard let hex = t.string("token_sha256") else {
            return token(&t, readFile: readFile)
        }
        if t.has("token") || t.has("token_file") {
            // Read, so that they are reported as the conflict and not also as unknown keys.
            _ = (t.string("token"), t.string("token_file"))
            t.error("token_sha256", "set one of token, token_file and token_sha256")
            return nil
        }
        guard hex.utf8.count == 64, Hex.decode(Substring(hex)) != nil else {
            t.error("token_sha256", "token_sha256 must be 64 hex digits (the SHA-256 of the token); fastgw token new prints one")
            return nil
        }
        return GatewayConfig.AgentGrant.hashPrefix + hex.lowercased()
    }

    static func token(
        _ t: inout TableReader, readFile: (String) throws -> String
    ) -> String? {
        let inline = t.string("token")
        let file = t.path("token_file")
        var token: String?
        switch (inline, file) {
        case (.some, .some):
            t.error("token_file", "set either token or token_file, not both")
        case (.none, .none):
            t.error("token", "token or token_file is required")
        case (.some(let s), .none):
            token = s
        case (.none, .some(let path)):
            // `fastgw check` outside the unit cannot know the token; the reference stands in
            // for it (the daemons refuse an unset $CREDENTIALS_DIRECTORY, so never serve it).
            if Credentials.isUnchecked(path) { return path }
            do {
                token = try readFile(path).trimmingTrailingNewlines()
            } catch {
                let credential = t.paths.references.last { $0.path == path }
                let hint = credential.map { "; \(Credentials.missingHint(name: $0.name))" } ?? ""
                t.error("token_file", "cannot read token_file \(path): \(error)\(hint)")
            }
        }
        guard let token else { return nil }
        let key = inline != nil ? "token" : "token_file"
        if token.count < minimumLength {
            t.error(key, "token is shorter than \(minimumLength) characters; generate one with: openssl rand -hex 32")
            return nil
        }
        if !token.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0.asciiValue! >= 0x21 && $0.asciiValue! < 0x7f }) {
            t.error(key, "token must be printable ASCII without spaces")
            return nil
        }
        return token
    }
}

public enum Paths {
    /// Relative paths in a config file are relative to the file's directory.
    public static func resolve(_ path: String, against base: String) -> String {
        if path.hasPrefix("/") || base.isEmpty { return path }
        return base.hasSuffix("/") ? base + path : base + "/" + path
    }

    public static func directory(of file: String) -> String {
        guard let slash = file.lastIndex(of: "/") else { return "." }
        let dir = String(file[..<slash])
        return dir.isEmpty ? "/" : dir
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" || last == " " { s = s.dropLast() }
        return String(s)
    }
}
