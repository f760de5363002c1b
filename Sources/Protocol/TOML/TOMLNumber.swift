/// Integers and floats exactly as TOML 1.0 spells them, read from the bytes of one token.
/// Pure and linear in the token; each refusal says what TOML requires, so an operator who
/// wrote `.5` or `1__000` learns how to write it.
enum TOMLNumber {
    /// Why a token is no TOML number; the parser adds the line.
    struct Refusal: Error {
        let message: String
    }

    static func value(_ token: some Collection<UInt8>) throws(Refusal) -> TOMLValue {
        let bytes = Array(token)
        let text = String(decoding: bytes, as: UTF8.self)
        func refuse(_ why: String) -> Refusal {
            Refusal(message: "invalid number \(text.clipped(head: TOMLLimits.maxQuoted)): \(why)")
        }
        var s = bytes[...]
        var negative = false
        if let c = s.first, c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
            negative = c == UInt8(ascii: "-")
            s = s.dropFirst()
            if let d = s.first, d == UInt8(ascii: "+") || d == UInt8(ascii: "-") { throw refuse("a number takes at most one sign") }
        }
        if s.elementsEqual("inf".utf8) { return .float(negative ? -.infinity : .infinity) }
        if s.elementsEqual("nan".utf8) { return .float(.nan) }
        guard let first = s.first, isDecimal(first) || first == UInt8(ascii: ".") || first == UInt8(ascii: "_") else {
            throw Refusal(message: "invalid value \(text.clipped(head: TOMLLimits.maxQuoted)) (strings need quotes)")
        }
        if s.count >= 2, first == UInt8(ascii: "0"), let radix = radix(s[s.startIndex + 1]) {
            guard s.count == bytes.count else { throw refuse("hexadecimal, octal and binary integers take no sign") }
            return .integer(try integer(s.dropFirst(2), radix: radix, negative: false, refuse))
        }
        // Decimal: integer part, then an optional fraction and an optional exponent.
        let integerEnd = s.firstIndex { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") } ?? s.endIndex
        let integerPart = s[..<integerEnd]
        guard !integerPart.isEmpty else { throw refuse("a float needs a digit before the point (write 0.5, not .5)") }
        try checkRun(integerPart, radix: 10, refuse)
        if integerPart.count > 1, integerPart.first == UInt8(ascii: "0") {
            throw refuse("leading zeros are not allowed (write 3.14, not 03.14; 0o17 for octal)")
        }
        if integerEnd == s.endIndex { return .integer(try integer(integerPart, radix: 10, negative: negative, refuse)) }
        var rest = s[integerEnd...]
        if rest.first == UInt8(ascii: ".") {
            rest = rest.dropFirst()
            let fractionEnd = rest.firstIndex { !isDecimal($0) && $0 != UInt8(ascii: "_") } ?? rest.endIndex
            guard fractionEnd > rest.startIndex else { throw refuse("a float needs a digit after the point (write 1.0, not 1.)") }
            try checkRun(rest[..<fractionEnd], radix: 10, refuse)
            rest = rest[fractionEnd...]
        }
        if let e = rest.first, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            rest = rest.dropFirst()
            if let c = rest.first, c == UInt8(ascii: "+") || c == UInt8(ascii: "-") { rest = rest.dropFirst() }
            let exponentEnd = rest.firstIndex { !isDecimal($0) && $0 != UInt8(ascii: "_") } ?? rest.endIndex
            guard exponentEnd > rest.startIndex else { throw refuse("an exponent needs digits after the e (write 1e6)") }
            try checkRun(rest[..<exponentEnd], radix: 10, refuse)
            rest = rest[exponentEnd...]
        }
        guard rest.isEmpty else {
            throw refuse("a float is digits, an optional .digits and an optional exponent (e.g. 3.14, 1e6, 1.2e-3)")
        }
        let digits = String(decoding: bytes.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
        guard let d = Double(digits), d.isFinite else { throw refuse("out of the range of a 64-bit float") }
        return .float(d)
    }

    /// 16, 8 or 2 for the letter after a leading 0 (`0x`, `0o`, `0b`).
    private static func radix(_ letter: UInt8) -> Int? {
        switch letter {
        case UInt8(ascii: "x"): return 16
        case UInt8(ascii: "o"): return 8
        case UInt8(ascii: "b"): return 2
        default: return nil
        }
    }

    private static func isDecimal(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    private static func digitValue(_ c: UInt8, radix: Int) -> Int? {
        let v: Int
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = Int(c - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): v = Int(c - UInt8(ascii: "A")) + 10
        default: return nil
        }
        return v < radix ? v : nil
    }

    /// Digits of `radix` with single underscores between them, nothing else.
    private static func checkRun(
        _ run: ArraySlice<UInt8>, radix: Int, _ refuse: (String) -> Refusal
    ) throws(Refusal) {
        let name = [16: "hexadecimal digits", 8: "octal digits (0-7)", 2: "binary digits (0 or 1)"][radix] ?? "digits"
        let only = radix == 10 ? "a decimal number holds only digits" : "only \(name) may follow its 0x, 0o or 0b"
        guard !run.isEmpty else { throw refuse("\(name) must follow the 0x, 0o or 0b") }
        var previousIsDigit = false
        for c in run {
            if c == UInt8(ascii: "_") {
                guard previousIsDigit else { throw refuse("underscores must sit between digits") }
                previousIsDigit = false
            } else {
                guard digitValue(c, radix: radix) != nil else { throw refuse("\(only), with single underscores between them") }
                previousIsDigit = true
            }
        }
        guard previousIsDigit else { throw refuse("underscores must sit between digits") }
    }

    /// The value of a checked run, within 64 bits. Negative numbers are accumulated below
    /// zero, so -9223372036854775808 (whose magnitude has no positive Int) is read too.
    private static func integer(
        _ run: ArraySlice<UInt8>, radix: Int, negative: Bool, _ refuse: (String) -> Refusal
    ) throws(Refusal) -> Int {
        try checkRun(run, radix: radix, refuse)
        var value = 0
        for c in run {
            guard let d = digitValue(c, radix: radix) else { continue }
            let (shifted, o1) = value.multipliedReportingOverflow(by: radix)
            let (next, o2) = negative ? shifted.subtractingReportingOverflow(d) : shifted.addingReportingOverflow(d)
            guard !o1, !o2 else { throw refuse("out of the range of a 64-bit integer (-9223372036854775808 to 9223372036854775807)") }
            value = next
        }
        return value
    }
}
