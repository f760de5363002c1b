import Protocol

#if canImport(Glibc)
import Glibc
#endif

/// Reads a config file and parses it for either role, including the checks that need the
/// filesystem (certificates and keys load, CA bundle readable).
enum ConfigLoading {
    enum Loaded {
        case gateway(GatewayConfig)
        case agent(AgentConfig)
    }

    /// A whole file as UTF-8 (token files); errors carry the system's reason ("Permission denied").
    static func readFile(_ path: String) throws -> String {
        let bytes = try readBytes(path, limit: TOMLLimits.maxFileSize + 1)
        if bytes.count > TOMLLimits.maxFileSize { throw StartupError("file is larger than \(TOMLLimits.maxFileSize >> 20) MiB") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw StartupError("not valid UTF-8") }
        return text
    }

    /// At most `limit` bytes of a file: reading stops there, so a huge file (or /dev/zero)
    /// costs no more memory than the limit before it is refused.
    static func readBytes(_ path: String, limit: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StartupError(String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count < limit {
            let wanted = min(chunk.count, limit - bytes.count)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, wanted) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StartupError(String(cString: strerror(errno)))
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    static func load(path: String) -> Result<Loaded, ConfigError> {
        let bytes: [UInt8]
        do {
            // One byte past the limit tells a file at the limit from a larger one.
            bytes = try readBytes(path, limit: TOMLLimits.maxFileSize + 1)
        } catch {
            return .failure(ConfigError([ConfigDiagnostic(file: path, line: nil, message: "cannot read config: \(error)")]))
        }
        let text: String
        switch ConfigText.decode(bytes, file: path) {
        case .success(let t): text = t
        case .failure(let error): return .failure(error)
        }
        if isAgentFile(text) {
            return AgentConfig.parse(text: text, file: path, readFile: readFile).flatMap { c in
                checkTLS(file: path, lines: c.sourceLines, paths: ["agent.ca": c.ca, "agent.cert": c.clientCert, "agent.key": c.clientKey]) { () throws(TLSError) in
                    _ = try TLSContext.client(caFile: c.ca, certificateChain: c.clientCert, privateKey: c.clientKey, alpn: [])
                }.map { .agent(c) }
            }
        }
        return GatewayConfig.parse(text: text, file: path, readFile: readFile).flatMap { c in
            checkTLS(file: path, lines: c.sourceLines, paths: [
                "tunnel.cert": c.tunnel.cert, "tunnel.key": c.tunnel.key,
                "tunnel.client_ca": c.tunnel.clientCA, "tunnel.client_crl": c.tunnel.clientCRL,
            ]) { () throws(TLSError) in
                _ = try TLSContext.tunnel(c)
            }.flatMap { PublicCertificates.build(c) }.map { _ in .gateway(c) }
        }
    }

    /// An agent file has an `[agent]` table; a gateway file has `[[agent]]` entries and `[tunnel]`.
    /// A byte scan: splitting megabytes into lines of Characters took longer than parsing them.
    static func isAgentFile(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        let header = Array("[agent]".utf8)
        var i = 0
        while i < bytes.count {
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "\t") { i += 1 }
            var matched = 0
            while matched < header.count, i + matched < bytes.count, bytes[i + matched] == header[matched] { matched += 1 }
            if matched == header.count { return true }
            while i < bytes.count, bytes[i] != UInt8(ascii: "\n") { i += 1 }
            i += 1
        }
        return false
    }

    /// Loads the TLS material the config names, reporting a failure against the line of the
    /// key that names the failing file (`paths`: key path → file it names).
    private static func checkTLS(
        file: String, lines: [String: Int], paths: [String: String?], _ body: () throws(TLSError) -> Void
    ) -> Result<Void, ConfigError> {
        do {
            try body()
            return .success(())
        } catch {
            let key = paths.first { $0.value != nil && $0.value == error.file }?.key
            return .failure(ConfigError([ConfigDiagnostic(file: file, line: key.flatMap { lines[$0] }, message: error.message)]))
        }
    }
}
