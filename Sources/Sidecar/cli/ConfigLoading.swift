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

    /// A whole file as UTF-8; errors carry the system's reason ("Permission denied").
    static func readFile(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StartupError(String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StartupError(String(cString: strerror(errno)))
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > 16 << 20 { throw StartupError("file is larger than 16 MiB") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw StartupError("not valid UTF-8") }
        return text
    }

    static func load(path: String) -> Result<Loaded, ConfigError> {
        let text: String
        do {
            text = try readFile(path)
        } catch {
            return .failure(ConfigError([ConfigDiagnostic(file: path, line: nil, message: "cannot read config: \(error)")]))
        }
        if isAgentFile(text) {
            return AgentConfig.parse(text: text, file: path, readFile: readFile).flatMap { c in
                checkTLS(file: path, lines: c.sourceLines, paths: ["agent.ca": c.ca, "agent.cert": c.clientCert, "agent.key": c.clientKey]) { () throws(TLSError) in
                    _ = try TLSContext.client(caFile: c.ca, certificateChain: c.clientCert, privateKey: c.clientKey, alpn: [])
                }.map { .agent(c) }
            }
        }
        return GatewayConfig.parse(text: text, file: path, readFile: readFile).flatMap { c in
            checkTLS(file: path, lines: c.sourceLines, paths: ["tunnel.cert": c.tunnel.cert, "tunnel.key": c.tunnel.key]) { () throws(TLSError) in
                _ = try TLSContext.server(certificateChain: c.tunnel.cert, privateKey: c.tunnel.key, alpn: [])
            }.flatMap { PublicCertificates.build(c) }.map { _ in .gateway(c) }
        }
    }

    /// An agent file has an `[agent]` table; a gateway file has `[[agent]]` entries and `[tunnel]`.
    static func isAgentFile(_ text: String) -> Bool {
        text.split(separator: "\n").contains { line in
            line.drop(while: { $0 == " " || $0 == "\t" }).hasPrefix("[agent]")
        }
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
