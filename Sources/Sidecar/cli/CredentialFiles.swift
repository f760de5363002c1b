import Protocol

#if canImport(Glibc)
import Glibc
#endif

/// The filesystem half of `credential:NAME` path values; the decisions are in Protocol
/// (Credentials.swift).
enum CredentialFiles {
    /// This process's `$CREDENTIALS_DIRECTORY`, read anew at every load: systemd keeps the
    /// directory for the unit's lifetime, so a reload reads the credentials again.
    static func lookup(whenUnset: CredentialsLookup.WhenUnset) -> CredentialsLookup {
        CredentialsLookup(environment: { getenv($0).map { String(cString: $0) } }, whenUnset: whenUnset)
    }

    /// Every credential the file names must be readable in the directory: one error per
    /// missing one, on its key's line, saying what the unit lacks.
    static func checkReadable(_ references: [CredentialReference], file: String) -> Result<Void, ConfigError> {
        var problems: [ConfigDiagnostic] = []
        for r in references {
            guard let path = r.path, access(path, R_OK) != 0 else { continue }
            let reason = String(cString: strerror(errno))
            problems.append(ConfigDiagnostic(file: file, line: r.line, message:
                "\(r.key): credential \"\(r.name)\" cannot be read from $\(Credentials.variable) (\(path)): \(reason); "
                + Credentials.missingHint(name: r.name)))
        }
        return problems.isEmpty ? .success(()) : .failure(ConfigError(problems))
    }

    /// What `fastgw check` could not look at because `$CREDENTIALS_DIRECTORY` is unset (it
    /// usually runs outside the unit), one note per value, then how to check them too.
    static func notes(_ references: [CredentialReference], file: String) -> [String] {
        let skipped = references.filter { $0.path == nil }
        guard !skipped.isEmpty else { return [] }
        var lines = skipped.map {
            ConfigDiagnostic(file: file, line: $0.line, message:
                "note: \($0.key) \"\(Credentials.prefix)\($0.name)\" not checked: $\(Credentials.variable) is not set "
                + "(the daemon reads it there when systemd starts it with LoadCredential=\($0.name):…)").description
        }
        let loads = Set(skipped.map(\.name)).sorted().map { "-p LoadCredential=\($0):/path/to/file" }.joined(separator: " ")
        lines.append("note: to check credentials too: systemd-run --pipe --wait \(loads) fastgw check -c \(file)"
            + ", or set \(Credentials.variable) to a directory holding them")
        return lines
    }
}
