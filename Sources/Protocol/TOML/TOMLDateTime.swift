/// A calendar date as TOML writes it (`1979-05-27`): a local date, or the date part of a
/// date-time. Always a real day (month 1-12, day within the month, leap years counted).
/// Stored in narrow fields (4 bytes): a date-time sits inline in `TOMLValue`, so wide fields
/// would make every value of a config larger (`TOMLValueLayoutTests`).
public struct TOMLDate: Equatable, Sendable, CustomStringConvertible {
    private let year16: UInt16
    private let month8: UInt8
    private let day8: UInt8

    public var year: Int { Int(year16) }
    public var month: Int { Int(month8) }
    public var day: Int { Int(day8) }

    public init?(year: Int, month: Int, day: Int) {
        guard (0...9999).contains(year), (1...12).contains(month),
              (1...Self.days(inMonth: month, of: year)).contains(day) else { return nil }
        (year16, month8, day8) = (UInt16(year), UInt8(month), UInt8(day))
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
/// rounded). Second 60 is a leap second, which RFC 3339 allows. Narrow fields (8 bytes), as
/// in `TOMLDate`.
public struct TOMLTime: Equatable, Sendable, CustomStringConvertible {
    private let hour8: UInt8
    private let minute8: UInt8
    private let second8: UInt8
    private let nanosecond32: UInt32

    public var hour: Int { Int(hour8) }
    public var minute: Int { Int(minute8) }
    public var second: Int { Int(second8) }
    public var nanosecond: Int { Int(nanosecond32) }

    public init?(hour: Int, minute: Int, second: Int, nanosecond: Int = 0) {
        guard (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second),
              (0..<1_000_000_000).contains(nanosecond) else { return nil }
        (hour8, minute8, second8) = (UInt8(hour), UInt8(minute), UInt8(second))
        nanosecond32 = UInt32(nanosecond)
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
