/// One HTTP/1.1 response from an ACME server, and the headers ACME reads from it.
public struct AcmeHTTPResponse: Sendable {
    public let status: Int
    /// Field names lowercased, in arrival order.
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name == lower }?.value
    }

    public var replayNonce: String? { header("replay-nonce") }
    public var location: String? { header("location") }

    public var json: JSON? { try? JSON.parse(body) }

    /// A problem document, when the server sent one (whatever Content-Type it claimed).
    public var problem: AcmeProblem? { AcmeProblem(body: body) }

    /// Targets of `Link: <url>;rel="name"` fields (RFC 8288) with that relation, all fields
    /// and comma-separated links considered.
    public func links(rel: String) -> [String] {
        var out: [String] = []
        for field in headers where field.name == "link" {
            for link in Self.splitLinks(field.value) {
                guard let open = link.firstIndex(of: "<"), let close = link[open...].firstIndex(of: ">") else { continue }
                let target = String(link[link.index(after: open)..<close])
                let params = link[link.index(after: close)...].split(separator: ";")
                for param in params {
                    let pair = param.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces() }
                    guard pair.count == 2, pair[0].lowercased() == "rel" else { continue }
                    let relations = pair[1].trimmingCharacters("\"").split(separator: " ").map { $0.lowercased() }
                    if relations.contains(rel.lowercased()) { out.append(target) }
                }
            }
        }
        return out
    }

    /// Commas split links except inside <...> or quotes.
    private static func splitLinks(_ value: String) -> [Substring] {
        var parts: [Substring] = []
        var start = value.startIndex
        var inAngle = false, inQuote = false
        for i in value.indices {
            switch value[i] {
            case "<" where !inQuote: inAngle = true
            case ">" where !inQuote: inAngle = false
            case "\"" where !inAngle: inQuote.toggle()
            case "," where !inAngle && !inQuote:
                parts.append(value[start..<i])
                start = value.index(after: i)
            default: break
            }
        }
        parts.append(value[start...])
        return parts
    }

    /// The longest Retry-After believed: a CA asking for more is still asked again after a day.
    public static let retryAfterCeiling = 86_400

    /// Retry-After (RFC 9110 §10.2.3) in seconds from `now`: delta-seconds or an IMF-fixdate,
    /// at most `retryAfterCeiling`.
    public func retryAfter(now: Int) -> Int? {
        guard let value = header("retry-after")?.trimmingSpaces() else { return nil }
        if !value.isEmpty, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            // More digits than an Int holds is still "a long time".
            return min(Int(value) ?? Self.retryAfterCeiling, Self.retryAfterCeiling)
        }
        guard let date = HTTPDate.parseIMFFixdate(value) else { return nil }
        return min(max(0, date - now), Self.retryAfterCeiling)
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }

    func trimmingCharacters(_ c: Character) -> String {
        String(drop(while: { $0 == c }).reversed().drop(while: { $0 == c }).reversed())
    }
}

/// Dates in HTTP and ACME, to seconds since the epoch.
public enum HTTPDate {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// "Sun, 06 Nov 1994 08:49:37 GMT".
    /// Only the fixed field widths are accepted (1-2 digit day, 4-digit year, 2-digit clock
    /// fields, in range), so a hostile server's huge numbers never reach the arithmetic.
    public static func parseIMFFixdate(_ s: String) -> Int? {
        let parts = s.split(separator: " ", omittingEmptySubsequences: false)
        func digits(_ text: Substring, _ widths: ClosedRange<Int>) -> Int? {
            guard widths.contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return Int(text)
        }
        guard parts.count == 6, parts[5] == "GMT", let day = digits(parts[1], 1...2), (1...31).contains(day),
              let month = months.firstIndex(of: String(parts[2])), let year = digits(parts[3], 4...4) else { return nil }
        let clock = parts[4].split(separator: ":", omittingEmptySubsequences: false).compactMap { digits($0, 2...2) }
        guard clock.count == 3, clock[0] < 24, clock[1] < 60, clock[2] <= 60 else { return nil }
        return epoch(year: year, month: month + 1, day: day, hour: clock[0], minute: clock[1], second: clock[2])
    }

    /// RFC 3339 date-time ("2025-01-02T04:00:00Z", fractions and offsets allowed), as ARI's
    /// suggestedWindow and ACME's `expires` use.
    public static func parseRFC3339(_ s: String) -> Int? {
        let b = Array(s.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count else { return nil }
            var n = 0
            for c in b[range] {
                guard c >= 48, c <= 57 else { return nil }
                n = n * 10 + Int(c - 48)
            }
            return n
        }
        guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] | 0x20 == UInt8(ascii: "t"),
              b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60 else { return nil }
        var i = 19
        if b[i] == UInt8(ascii: ".") {
            i += 1
            while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1 }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] | 0x20 == UInt8(ascii: "z") {
            guard i + 1 == b.count else { return nil }
        } else {
            guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), i + 6 == b.count, b[i + 3] == UInt8(ascii: ":"),
                  let h = number(i + 1..<i + 3), let m = number(i + 4..<i + 6) else { return nil }
            offset = (h * 3600 + m * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
        }
        return epoch(year: year, month: month, day: day, hour: hour, minute: minute, second: second) - offset
    }

    /// Days from civil (proleptic Gregorian), after Howard Hinnant's well-known algorithm.
    static func epoch(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        return days * 86400 + hour * 3600 + minute * 60 + second
    }
}
