import Protocol
import XCTest

/// Defects a review of the TOML 1.0 reader found (issue #19): the size of a value, the line an
/// unclosed value is reported on, bare CRs in multi-line strings, inline-table key lines and
/// the config readers' date-time hints.
final class TOMLReviewTests: XCTestCase {
    private func error(_ document: String) -> String { TOMLProbe.error(document: document) }

    /// Every value of a config is a `TOMLValue`; date-times sit inline, so they must not make
    /// it larger than before they were read (48 bytes: a table's five words and two flags,
    /// and the case tag).
    func testADateTimeDoesNotMakeAValueLarger() {
        XCTAssertLessThanOrEqual(MemoryLayout<TOMLValue>.stride, 48)
        XCTAssertLessThanOrEqual(MemoryLayout<TOMLDate>.size, 4)
        XCTAssertLessThanOrEqual(MemoryLayout<TOMLTime>.size, 8)
        let date = TOMLDate(year: 9999, month: 12, day: 31)
        let time = TOMLTime(hour: 23, minute: 59, second: 60, nanosecond: 999_999_999)
        XCTAssertEqual(date?.year, 9999)
        XCTAssertEqual(time?.nanosecond, 999_999_999)
        XCTAssertEqual(try TOMLProbe.value("9999-12-31T23:59:60.999999999-23:59"),
                       .offsetDateTime(date!, time!, offsetMinutes: -1439))
    }

    func testAnUnclosedValueIsReportedWhereItOpened() {
        XCTAssertEqual(error("a = 1\ns = \"\"\"\nx\ny\n"), "line 2: unterminated multi-line string (the file ends before its closing quotes)")
        XCTAssertEqual(error("s = '''\nx\n\ny"), "line 1: unterminated multi-line string (the file ends before its closing quotes)")
        XCTAssertEqual(error("s = \"\"\"\nx \\"), "line 1: unterminated multi-line string (the file ends before its closing quotes)")
        XCTAssertEqual(error("a = 1\nx = [\n1,\n2,\n"), "line 2: unterminated array (the file ends before its ])")
        XCTAssertEqual(error("x = [\n1,\n[2\n"), "line 3: unterminated array (the file ends before its ])")
        XCTAssertEqual(error("a = 1\nt = { x = [\n1,\n2] "), "line 2: unterminated inline table (the file ends before its })")
    }

    func testATooLongMultiLineStringNamesItsOpeningLine() {
        let long = String(repeating: "a\n", count: TOMLLimits.maxStringLength / 2 + 1)
        XCTAssertEqual(error("a = 1\ns = '''\(long)'''\n"), "line 2: a string is longer than 64 KiB")
        XCTAssertEqual(error("a = 1\ns = \"\"\"\(long)\"\"\"\n"), "line 2: a string is longer than 64 KiB")
    }

    /// TOML 1.0 allows CR in a multi-line string only as part of CRLF.
    func testABareCRInAMultiLineStringIsRefused() {
        let control = "control character U+000D in a string; TOML allows only tab there (write escapes such as \\u0000 in basic strings)"
        XCTAssertEqual(error("s = \"\"\"\rx\"\"\""), "line 1: " + control, "after the opening quotes")
        XCTAssertEqual(error("s = '''\rx'''"), "line 1: " + control)
        XCTAssertTrue(error("s = \"\"\"x\\ \r \ny\"\"\"").hasPrefix("line 1: invalid escape"), "a bare CR between a backslash and the line end")
        XCTAssertEqual(error("s = \"\"\"x\\\n \r y\"\"\""), "line 2: " + control, "in the whitespace a backslash trims")
        XCTAssertEqual(try TOMLParser.parse("s = \"\"\"\r\nx\\  \r\n\r\n  y\r\nz\"\"\"")["s"], .string("xy\r\nz"), "CRLF stays allowed")
        XCTAssertEqual(try TOMLParser.parse("s = '''\r\nx\r\n'''")["s"], .string("x\r\n"))
    }

    func testAnInlineTableKeyHasItsOwnLine() throws {
        let t = try TOMLParser.parse("a = 1\nt = { s = \"\"\"\nx\n\"\"\", n = 1 }\n")
        let inline = try XCTUnwrap(t["t"]?.table)
        XCTAssertEqual(inline.line(of: "s"), 2)
        XCTAssertEqual(inline.line(of: "n"), 4)
    }

    /// "Quote it" only where the key takes a string; a key that takes a string or an array
    /// says so.
    func testDateTimeHintsFitTheKey() {
        let errors = GatewayConfigFixture().errors("""
            [[listener]]
            name = "web"
            protocol = "http"
            listen = "0.0.0.0:80"
            policy = 07:30:00
            [[route_policy]]
            ports = 2026-01-01
            policy = ["a", 07:30:00]
            [limits]
            max_connections = 07:30:00
            """)
        for expected in [
            "/etc/fastgw/gateway.toml:11: listener \"web\": policy must be a string or an array of strings, not the local time 07:30:00",
            "/etc/fastgw/gateway.toml:13: route_policy: ports must be an array of integers, not the local date 2026-01-01",
            "/etc/fastgw/gateway.toml:14: route_policy: policy must be a string or an array of strings, not the local time 07:30:00 (quote it to make it a string)",
            "/etc/fastgw/gateway.toml:16: max_connections must be an integer, not the local time 07:30:00",
        ] {
            XCTAssertTrue(errors.contains(expected), "\(expected) not in \(errors)")
        }
    }
}
