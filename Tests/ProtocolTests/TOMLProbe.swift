import Protocol

/// One-line probes of the TOML reader for the TOML unit tests.
enum TOMLProbe {
    /// The value `x = text` gives `x`.
    static func value(_ text: String) throws -> TOMLValue? {
        try TOMLParser.parse("x = \(text)")["x"]
    }

    /// The error for `x = text` written on line 2, or what `x` was read as.
    static func error(value text: String) -> String {
        do {
            let t = try TOMLParser.parse("a = 1\nx = \(text)\n")
            return "accepted as \(String(describing: t["x"]))"
        } catch {
            return error.description
        }
    }

    /// The error for a whole document, or "accepted".
    static func error(document: String) -> String {
        do {
            _ = try TOMLParser.parse(document)
            return "accepted"
        } catch {
            return error.description
        }
    }
}
