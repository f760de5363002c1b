/// Parsers for the scalar notations the config files use; each returns nil on malformed input
/// so the caller can report it against the key's line.
public enum ConfigValues {
    /// `"15s"`, `"2m"`, `"500ms"`, `"1h30m"`. A bare number is not accepted: the unit is the
    /// part an operator most often gets wrong.
    public static func duration(_ text: String) -> Duration? {
        var rest = Substring(text.strippingSpaces())
        guard !rest.isEmpty else { return nil }
        // Milliseconds with overflow checks: "9999999999999999h" trapped (and took a reloading
        // daemon with it); a duration past 292 million years is simply not a duration.
        var total: Int64 = 0
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty, let value = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix(while: { $0.isLetter })
            rest = rest.dropFirst(unit.count)
            let factor: Int64
            switch unit {
            case "ms": factor = 1
            case "s": factor = 1000
            case "m": factor = 60_000
            case "h": factor = 3_600_000
            default: return nil
            }
            let (milliseconds, overflow) = value.multipliedReportingOverflow(by: factor)
            let (sum, sumOverflow) = total.addingReportingOverflow(milliseconds)
            guard !overflow, !sumOverflow else { return nil }
            total = sum
        }
        return .milliseconds(total)
    }

    /// Byte sizes: an integer, or `"256KiB"`, `"4MiB"`, `"1GiB"` (also `KB`/`MB`/`GB`, same powers of two).
    public static func size(_ text: String) -> Int? {
        let trimmed = Substring(text.strippingSpaces())
        let digits = trimmed.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, let value = Int(digits) else { return nil }
        let unit = String(trimmed.dropFirst(digits.count)).strippingSpaces()
        let factor: Int
        switch unit.lowercased() {
        case "", "b": factor = 1
        case "k", "kb", "kib": factor = 1 << 10
        case "m", "mb", "mib": factor = 1 << 20
        case "g", "gb", "gib": factor = 1 << 30
        default: return nil
        }
        let (product, overflow) = value.multipliedReportingOverflow(by: factor)
        return overflow ? nil : product
    }
}

extension String {
    /// Trims spaces at both ends; Foundation-free so Protocol stays light.
    func strippingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
