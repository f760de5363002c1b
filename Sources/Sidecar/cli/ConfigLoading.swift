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
        case visitor(VisitorConfig)
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

    /// `credentials`: the daemons (start and reload) refuse `credential:NAME` values without
    /// `$CREDENTIALS_DIRECTORY`; `fastgw check` skips them (CredentialFiles.notes).
    static func load(
        path: String, credentials: CredentialsLookup = CredentialFiles.lookup(whenUnset: .refuse)
    ) -> Result<Loaded, ConfigError> {
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
        if hasTable(text, "[visitor]") {
            return VisitorConfig.parse(text: text, file: path, credentials: credentials, environment: environment, readFile: readFile).flatMap { v in
                checkConnection(v.connection, table: "visitor").map { .visitor(v) }
            }
        }
        if isAgentFile(text) {
            return AgentConfig.parse(text: text, file: path, credentials: credentials, environment: environment, readFile: readFile).flatMap { c in
                checkConnection(c, table: "agent").map { .agent(c) }
            }
        }
        return GatewayConfig.parse(text: text, file: path, credentials: credentials, readFile: readFile).flatMap { c in
            CredentialFiles.checkReadable(c.credentials, file: path).flatMap {
                // A credential check cannot see leaves the tunnel's context unbuilt; what it can
                // see of the certificate pair must still be readable.
                // Without a dedicated tunnel listener there is no tunnel certificate to load.
                guard c.tunnel.listen != nil else { return .success(()) }
                guard [c.tunnel.cert, c.tunnel.key, c.tunnel.clientCA, c.tunnel.clientCRL].allSatisfy(known) else {
                    return readable(c.tunnel.cert, c.tunnel.key, file: path, line: c.sourceLines["tunnel.cert"])
                }
                return checkTLS(file: path, lines: c.sourceLines, paths: [
                    "tunnel.cert": c.tunnel.cert, "tunnel.key": c.tunnel.key,
                    "tunnel.client_ca": c.tunnel.clientCA, "tunnel.client_crl": c.tunnel.clientCRL,
                ]) { () throws(TLSError) in
                    _ = try TLSContext.tunnel(c)
                }
            }.flatMap { checkPublicCertificates(c) }.map { .gateway(c) }
        }
    }

    /// The process environment, for the agent's and the visitor's `proxy = "env"`.
    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// The agent's and the visitor's connection: credential files readable, CA and client
    /// certificate loadable (`table` names their keys in the line numbers kept).
    private static func checkConnection(_ c: AgentConfig, table: String) -> Result<Void, ConfigError> {
        let path = c.file
        return CredentialFiles.checkReadable(c.credentials, file: path).flatMap {
            // Files left unchecked (check outside the unit) are left out; a certificate
            // without its key cannot be loaded, so the pair goes together.
            let pair = known(c.clientCert) && known(c.clientKey)
            if !pair, let cert = c.clientCert, let key = c.clientKey,
               case .failure(let e) = readable(cert, key, file: path, line: c.sourceLines["\(table).cert"]) {
                return .failure(e)
            }
            let ca = known(c.ca) ? c.ca : nil, cert = pair ? c.clientCert : nil, key = pair ? c.clientKey : nil
            return checkTLS(file: path, lines: c.sourceLines, paths: ["\(table).ca": ca, "\(table).cert": cert, "\(table).key": key]) { () throws(TLSError) in
                _ = try TLSContext.client(caFile: ca, certificateChain: cert, privateKey: key, alpn: [])
            }
        }
    }

    /// Whether a path from the config can be looked at: not a credential left unchecked.
    private static func known(_ path: String?) -> Bool {
        path.map { !Credentials.isUnchecked($0) } ?? true
    }

    /// A certificate/key pair of which one half is a credential left unchecked: the pair
    /// cannot be loaded, but the other half must at least be readable.
    private static func readable(_ cert: String, _ key: String, file: String, line: Int?) -> Result<Void, ConfigError> {
        for (what, path) in [("certificate", cert), ("private key", key)] where known(path) {
            do {
                _ = try readBytes(path, limit: 1)
            } catch {
                return .failure(ConfigError([ConfigDiagnostic(file: file, line: line, message: "cannot read \(what) \(path): \(error)")]))
            }
        }
        return .success(())
    }

    /// The HTTPS certificates load as the gateway will load them; when some keys are
    /// credentials left unchecked, each pair that can be looked at still loads.
    private static func checkPublicCertificates(_ c: GatewayConfig) -> Result<Void, ConfigError> {
        let pairs = c.certificates.map(\.files) + c.listeners.compactMap(\.defaultCertificate)
        guard pairs.contains(where: { !known($0.cert) || !known($0.key) }) else {
            return PublicCertificates.build(c).map { _ in }
        }
        for files in pairs {
            guard known(files.cert) && known(files.key) else {
                if case .failure(let e) = readable(files.cert, files.key, file: c.file, line: files.line) { return .failure(e) }
                continue
            }
            do {
                _ = try PublicCertificates.load(files, config: c)
            } catch {
                return .failure(error)
            }
        }
        return .success(())
    }

    /// An agent file has an `[agent]` table; a gateway file has `[[agent]]` entries and `[tunnel]`.
    /// A byte scan: splitting megabytes into lines of Characters took longer than parsing them.
    static func isAgentFile(_ text: String) -> Bool {
        hasTable(text, "[agent]")
    }

    /// Whether a line starts with `header` (after blanks); `[[visitor]]` is not `[visitor]`.
    static func hasTable(_ text: String, _ header: String) -> Bool {
        let bytes = Array(text.utf8)
        let header = Array(header.utf8)
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
