import Foundation
import Protocol

/// Reads a config file and parses it for either role, including the checks that need the
/// filesystem (certificates and keys load, CA bundle readable).
enum ConfigLoading {
    enum Loaded {
        case gateway(GatewayConfig)
        case agent(AgentConfig)
    }

    static func readFile(_ path: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw StartupError(Self.describe(error, path: path))
        }
    }

    static func describe(_ error: Error, path: String) -> String {
        if let posix = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        return FileManager.default.fileExists(atPath: path) ? "not readable" : "No such file or directory"
    }

    static func load(path: String) -> Result<Loaded, ConfigError> {
        let text: String
        do {
            text = try readFile(path)
        } catch {
            return .failure(ConfigError([ConfigDiagnostic(file: path, line: nil, message: "cannot read config: \(error)")]))
        }
        // An agent file has an [agent] table; a gateway file has [[agent]] entries and [tunnel].
        if text.range(of: #"(?m)^\s*\[agent\]"#, options: .regularExpression) != nil {
            return AgentConfig.parse(text: text, file: path, readFile: readFile).flatMap { c in
                checkTLS(text: text, file: path) { _ = try TLSContext.client(caFile: c.ca, certificateChain: c.clientCert, privateKey: c.clientKey, alpn: []) }
                    .map { .agent(c) }
            }
        }
        return GatewayConfig.parse(text: text, file: path, readFile: readFile).flatMap { c in
            checkTLS(text: text, file: path) {
                _ = try TLSContext.server(certificateChain: c.tunnel.cert, privateKey: c.tunnel.key, alpn: [])
            }.map { .gateway(c) }
        }
    }

    /// Loads the TLS material the config names, reporting failures against the right line.
    private static func checkTLS(text: String, file: String, _ body: () throws -> Void) -> Result<Void, ConfigError> {
        do {
            try body()
            return .success(())
        } catch {
            let lines = SourceLines(text: text)
            let message = "\(error)"
            let key = message.contains("CA file") ? "agent.ca" : message.contains("private key") ? (text.contains("[tunnel]") ? "tunnel.key" : "agent.key") : (text.contains("[tunnel]") ? "tunnel.cert" : "agent.cert")
            return .failure(ConfigError([ConfigDiagnostic(file: file, line: lines.line(of: key), message: message)]))
        }
    }
}
