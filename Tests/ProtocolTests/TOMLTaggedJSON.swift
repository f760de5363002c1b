import Foundation
import Protocol

/// toml-test's "tagged JSON" for a parsed document (every value becomes
/// `{"type": …, "value": "…"}`, tables become objects, arrays stay arrays), and its rules for
/// comparing two such documents: tables unordered, floats by value (nan equals nan, +inf
/// equals inf), date-times by the instant or local value they denote, everything else as text.
/// Test-only: this is how the conformance run (TOMLConformanceTests) checks the reader.
enum TOMLTaggedJSON {
    static func encode(_ table: TOMLTable) -> JSON {
        var object: [String: JSON] = [:]
        for key in table.keys {
            if let value = table[key] { object[key] = encode(value) }
        }
        return .object(object)
    }

    static func encode(_ value: TOMLValue) -> JSON {
        switch value {
        case .table(let t): return encode(t)
        case .array(let items): return .array(items.map { encode($0) })
        case .string(let s): return tagged("string", s)
        case .integer(let i): return tagged("integer", String(i))
        case .boolean(let b): return tagged("bool", b ? "true" : "false")
        case .float(let d):
            if d.isNaN { return tagged("float", "nan") }
            if d.isInfinite { return tagged("float", d < 0 ? "-inf" : "inf") }
            return tagged("float", "\(d)")
        case .offsetDateTime(let date, let time, let offset):
            let sign = offset < 0 ? "-" : "+", h = abs(offset) / 60, m = abs(offset) % 60
            return tagged("datetime", "\(date)T\(time)\(sign)\(h < 10 ? "0" : "")\(h):\(m < 10 ? "0" : "")\(m)")
        case .localDateTime(let date, let time): return tagged("datetime-local", "\(date)T\(time)")
        case .localDate(let date): return tagged("date-local", "\(date)")
        case .localTime(let time): return tagged("time-local", "\(time)")
        }
    }

    private static func tagged(_ type: String, _ value: String) -> JSON {
        .object(["type": .string(type), "value": .string(value)])
    }

    /// The first difference between the expected document and the reader's, as a sentence
    /// naming the key; nil when they agree.
    static func difference(want: JSON, have: JSON, at path: String = "") -> String? {
        let at = path.isEmpty ? "the document" : "key '\(path)'"
        switch want {
        case .array(let wantItems):
            guard case .array(let haveItems) = have else { return "\(at): expected an array, got \(have.serialized())" }
            guard wantItems.count == haveItems.count else {
                return "\(at): expected \(wantItems.count) elements, got \(haveItems.count)"
            }
            for (n, (w, h)) in zip(wantItems, haveItems).enumerated() {
                if let d = difference(want: w, have: h, at: "\(path)[\(n)]") { return d }
            }
            return nil
        case .object(let wantObject):
            guard case .object(let haveObject) = have else { return "\(at): expected a table, got \(have.serialized())" }
            if isTagged(wantObject) != isTagged(haveObject) {
                return "\(at): expected \(want.serialized()), got \(have.serialized())"
            }
            if isTagged(wantObject) { return valueDifference(want: wantObject, have: haveObject, at: at) }
            for key in wantObject.keys where haveObject[key] == nil { return "key '\(join(path, key))' is missing" }
            for key in haveObject.keys where wantObject[key] == nil { return "key '\(join(path, key))' is not expected" }
            for (key, w) in wantObject {
                if let d = difference(want: w, have: haveObject[key]!, at: join(path, key)) { return d }
            }
            return nil
        default:
            return "\(at): the expected JSON holds \(want.serialized()), which toml-test never writes"
        }
    }

    private static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private static func isTagged(_ o: [String: JSON]) -> Bool {
        o.count == 2 && o["type"]?.string != nil && o["value"]?.string != nil
    }

    private static func valueDifference(want: [String: JSON], have: [String: JSON], at: String) -> String? {
        let type = want["type"]!.string!, w = want["value"]!.string!, h = have["value"]!.string!
        let shown = "\(at): expected \(type) \(w), got \(have["type"]!.string!) \(h)"
        guard have["type"]!.string! == type else { return shown }
        switch type {
        case "float": return sameFloat(w, h) ? nil : shown
        case "datetime", "datetime-local", "date-local", "time-local":
            guard let wv = TaggedDateTime(type, w) else { return "\(at): cannot read the expected \(type) \(w)" }
            return wv == TaggedDateTime(type, h) ? nil : shown
        default: return w == h ? nil : shown
        }
    }

    private static func sameFloat(_ w: String, _ h: String) -> Bool {
        if w.hasSuffix("nan") || h.hasSuffix("nan") { return w.hasSuffix("nan") && h.hasSuffix("nan") }
        guard let a = Double(w), let b = Double(h) else { return false }
        // -0.0 == 0.0 in IEEE arithmetic; TOML keeps the sign, so the comparison must too.
        return a == b && a.sign == b.sign
    }
}

/// A tagged date-time reduced to what it denotes: for `datetime` the instant (seconds since
/// 1970 in UTC and nanoseconds), for the local kinds their fields; `t`/`z`/space spellings and
/// trailing zeros of the fraction do not matter. Written apart from the reader so the run
/// does not check the reader against itself.
struct TaggedDateTime: Equatable {
    var seconds = 0
    var nanoseconds = 0

    init?(_ type: String, _ text: String) {
        var s = Substring(text.uppercased().replacingOccurrences(of: " ", with: "T"))
        var offsetSeconds = 0
        if type == "datetime" {
            if s.hasSuffix("Z") {
                s = s.dropLast()
            } else {
                guard s.count > 6, let sign = s.dropLast(5).last, sign == "+" || sign == "-",
                      let h = Int(s.suffix(5).prefix(2)), let m = Int(s.suffix(2)) else { return nil }
                offsetSeconds = (sign == "-" ? -1 : 1) * (h * 3600 + m * 60)
                s = s.dropLast(6)
            }
        }
        let parts = s.split(separator: "T", omittingEmptySubsequences: false)
        var date: Substring?, time: Substring?
        switch type {
        case "date-local": date = s
        case "time-local": time = s
        default:
            guard parts.count == 2 else { return nil }
            (date, time) = (parts[0], parts[1])
        }
        if let date {
            let f = date.split(separator: "-").compactMap { Int($0) }
            guard f.count == 3 else { return nil }
            seconds = Self.days(year: f[0], month: f[1], day: f[2]) * 86400
        }
        if let time {
            let main = time.split(separator: ".", maxSplits: 1)
            let f = main[0].split(separator: ":").compactMap { Int($0) }
            guard f.count == 3 else { return nil }
            seconds += f[0] * 3600 + f[1] * 60 + f[2]
            if main.count == 2 {
                let digits = String(main[1].prefix(9))
                guard let n = Int(digits) else { return nil }
                nanoseconds = n * Self.power(10, 9 - digits.count)
            }
        }
        seconds -= offsetSeconds
    }

    private static func power(_ base: Int, _ exponent: Int) -> Int { (0..<exponent).reduce(1) { r, _ in r * base } }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's civil algorithm).
    private static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}
