public enum FastgwVersion {
    public static let current = "0.3.0"
}

/// Human durations for tables: `850ms`, `42s`, `5m07s`, `3h12m`, `4d06h`.
public enum DurationText {
    public static func format(milliseconds ms: Int) -> String {
        if ms < 1000 { return "\(ms)ms" }
        let s = ms / 1000
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" + pad(s % 60) + "s" }
        if s < 86_400 { return "\(s / 3600)h" + pad(s % 3600 / 60) + "m" }
        return "\(s / 86_400)d" + pad(s % 86_400 / 3600) + "h"
    }

    private static func pad(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
}
