/// Date-times as TOML 1.0 takes them from RFC 3339: `YYYY-MM-DD`, `HH:MM:SS[.fraction]`,
/// joined by `T`, `t` or one space, with an optional `Z` or `±HH:MM` offset. Every field has
/// all its digits; values out of range (month 13, 30 February, hour 24) are refused.
extension TOMLParser {
    /// The date-time starting here, or nil when the value here is no date-time (a number).
    mutating func dateTime() throws(TOMLSyntaxError) -> TOMLValue? {
        let value: TOMLValue
        if digits(at: i, 4) != nil, peek(4) == UInt8(ascii: "-") {
            let day = try date()
            if let c = peek, c == UInt8(ascii: "T") || c == UInt8(ascii: "t") || (c == UInt8(ascii: " ") && digits(at: i + 1, 1) != nil) {
                i += 1
                let clock = try time(after: "the date")
                if let offset = try offset() {
                    value = .offsetDateTime(day, clock, offsetMinutes: Int16(offset))
                } else {
                    value = .localDateTime(day, clock)
                }
            } else {
                value = .localDate(day)
            }
        } else if digits(at: i, 2) != nil, peek(2) == UInt8(ascii: ":") {
            value = .localTime(try time(after: nil))
        } else {
            return nil
        }
        if let c = peek, Self.isBareKey(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: ":") || c == UInt8(ascii: "+") {
            throw fail("unexpected \(Self.show(c)) after a date-time; TOML writes 1979-05-27T07:32:00Z, "
                + "1979-05-27T07:32:00, 1979-05-27 or 07:32:00")
        }
        return value
    }

    private mutating func date() throws(TOMLSyntaxError) -> TOMLDate {
        guard let year = digits(at: i, 4), peek(4) == UInt8(ascii: "-"), let month = digits(at: i + 5, 2),
              peek(7) == UInt8(ascii: "-"), let day = digits(at: i + 8, 2) else {
            throw fail("a date is written YYYY-MM-DD with every digit (e.g. 1979-05-27)")
        }
        guard let date = TOMLDate(year: year, month: month, day: day) else {
            throw fail(month < 1 || month > 12
                ? "month \(month) does not exist; months run 01-12"
                : "day \(day) does not exist in month \(month) of \(year)")
        }
        i += 10
        return date
    }

    private mutating func time(after what: String?) throws(TOMLSyntaxError) -> TOMLTime {
        guard let hour = digits(at: i, 2), peek(2) == UInt8(ascii: ":"), let minute = digits(at: i + 3, 2),
              peek(5) == UInt8(ascii: ":"), let second = digits(at: i + 6, 2) else {
            throw fail("a time is written HH:MM:SS with every digit, seconds included (e.g. 07:32:00)"
                + (what.map { "; one must follow \($0) and its T" } ?? ""))
        }
        let written = String(decoding: b[i..<i + 8], as: UTF8.self)
        i += 8
        var nanosecond = 0
        if peek == UInt8(ascii: ".") {
            i += 1
            var count = 0
            while let c = peek, Self.isDigit(c) {
                // Digits past nanoseconds are cut off: TOML says truncate, not round.
                if count < 9 { nanosecond = nanosecond * 10 + Int(c - UInt8(ascii: "0")) }
                count += 1
                i += 1
            }
            guard count > 0 else { throw fail("a fraction of a second needs digits after the point") }
            for _ in count..<max(count, 9) { nanosecond *= 10 }
        }
        guard let time = TOMLTime(hour: hour, minute: minute, second: second, nanosecond: nanosecond) else {
            throw fail("time \(written) does not exist; hours run 00-23, minutes 00-59, seconds 00-60")
        }
        return time
    }

    /// `Z`/`z` (0) or `±HH:MM` in minutes east of UTC; nil when there is no offset.
    private mutating func offset() throws(TOMLSyntaxError) -> Int? {
        guard let c = peek else { return nil }
        if c == UInt8(ascii: "Z") || c == UInt8(ascii: "z") {
            i += 1
            return 0
        }
        guard c == UInt8(ascii: "+") || c == UInt8(ascii: "-") else { return nil }
        guard let hours = digits(at: i + 1, 2), peek(3) == UInt8(ascii: ":"), let minutes = digits(at: i + 4, 2) else {
            throw fail("a time offset is written Z, +HH:MM or -HH:MM")
        }
        guard hours <= 23, minutes <= 59 else {
            throw fail("time offset \(String(decoding: b[i..<i + 6], as: UTF8.self)) does not exist; offsets run -23:59 to +23:59")
        }
        i += 6
        return (c == UInt8(ascii: "-") ? -1 : 1) * (hours * 60 + minutes)
    }

    /// The number `count` ASCII digits at `index` spell; nil unless all are digits.
    func digits(at index: Int, _ count: Int) -> Int? {
        guard index >= 0, index + count <= b.count else { return nil }
        var value = 0
        for k in index..<index + count {
            guard Self.isDigit(b[k]) else { return nil }
            value = value * 10 + Int(b[k] - UInt8(ascii: "0"))
        }
        return value
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
}
