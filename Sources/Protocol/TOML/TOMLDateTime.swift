/// A calendar date as TOML writes it (`1979-05-27`): a local date, or the date part of a
/// date-time. Always a real day (month 1-12, day within the month, leap years counted).
public struct TOMLDate: Equatable, Sendable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    public init?(year: Int, month: Int, day: Int) {
        guard (0...9999).contains(year), (1...12).contains(month),
              (1...Self.days(inMonth: month, of: year)).contains(day) else { return nil }
        (self.year, self.month, self.day) = (year, month, day)
    }

    static func days(inMonth month: Int, of year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    public var description: String { "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))" }
}

/// A time of day as TOML writes it (`07:32:00.999`): a local time, or the time part of a
/// date-time. Digits of the fraction past nanoseconds are cut off (TOML: truncated, not
/// rounded). Second 60 is a leap second, which RFC 3339 allows.
public struct TOMLTime: Equatable, Sendable, CustomStringConvertible {
    public let hour: Int
    public let minute: Int
    public let second: Int
    public let nanosecond: Int

    public init?(hour: Int, minute: Int, second: Int, nanosecond: Int = 0) {
        guard (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second),
              (0..<1_000_000_000).contains(nanosecond) else { return nil }
        (self.hour, self.minute, self.second, self.nanosecond) = (hour, minute, second, nanosecond)
    }

    public var description: String {
        var text = "\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))"
        if nanosecond > 0 {
            var fraction = pad(nanosecond, 9)
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return text
    }
}

/// `Z` for UTC, else `+HH:MM` / `-HH:MM`.
func offsetText(minutes: Int) -> String {
    guard minutes != 0 else { return "Z" }
    return (minutes < 0 ? "-" : "+") + "\(pad(abs(minutes) / 60, 2)):\(pad(abs(minutes) % 60, 2))"
}

private func pad(_ n: Int, _ width: Int) -> String {
    let digits = String(n)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}
