import Protocol
import XCTest

/// Date-times are TOML values like any other (issue #19): read into values, checked for real
/// dates and times, and refused by the config readers as a wrong type with the key's line.
final class TOMLDateTimeTests: XCTestCase {
    private func value(_ text: String) throws -> TOMLValue? { try TOMLProbe.value(text) }

    private func error(_ text: String) -> String { TOMLProbe.error(value: text) }

    func testTheFourFormsAreValues() throws {
        let date = try XCTUnwrap(TOMLDate(year: 1979, month: 5, day: 27))
        let time = try XCTUnwrap(TOMLTime(hour: 7, minute: 32, second: 0))
        XCTAssertEqual(try value("1979-05-27T07:32:00Z"), .offsetDateTime(date, time, offsetMinutes: 0))
        XCTAssertEqual(try value("1979-05-27 07:32:00-08:30"), .offsetDateTime(date, time, offsetMinutes: -510))
        XCTAssertEqual(try value("1979-05-27t07:32:00z"), .offsetDateTime(date, time, offsetMinutes: 0))
        XCTAssertEqual(try value("1979-05-27T07:32:00"), .localDateTime(date, time))
        XCTAssertEqual(try value("1979-05-27"), .localDate(date))
        XCTAssertEqual(try value("07:32:00"), .localTime(time))
        XCTAssertEqual(try value("[1979-05-27, 07:32:00]"), .array([.localDate(date), .localTime(time)]))
        XCTAssertEqual(try TOMLParser.parse("x = 1979-05-27 # a date\n")["x"], .localDate(date))
    }

    func testFractionsAreTruncatedToNanoseconds() throws {
        XCTAssertEqual(try value("00:00:00.5")?.dateTimeDescription, "the local time 00:00:00.5")
        XCTAssertEqual(try value("00:00:00.1234567899"), .localTime(TOMLTime(hour: 0, minute: 0, second: 0, nanosecond: 123_456_789)!))
        XCTAssertEqual(try value("2000-02-29T23:59:60.25+14:00")?.dateTimeDescription,
                       "the offset date-time 2000-02-29T23:59:60.25+14:00", "a leap day and a leap second exist")
    }

    func testImpossibleOrMalformedDateTimesAreRefusedWithTheirLine() {
        XCTAssertEqual(error("2006-13-01"), "line 2: month 13 does not exist; months run 01-12")
        XCTAssertEqual(error("2006-00-01"), "line 2: month 0 does not exist; months run 01-12")
        XCTAssertEqual(error("2001-02-29"), "line 2: day 29 does not exist in month 2 of 2001")
        XCTAssertEqual(error("2006-01-32"), "line 2: day 32 does not exist in month 1 of 2006")
        XCTAssertEqual(error("2006-01-01T24:00:00"), "line 2: time 24:00:00 does not exist; hours run 00-23, minutes 00-59, seconds 00-60")
        XCTAssertEqual(error("07:32"), "line 2: a time is written HH:MM:SS with every digit, seconds included (e.g. 07:32:00)")
        XCTAssertEqual(error("1979-5-27"), "line 2: a date is written YYYY-MM-DD with every digit (e.g. 1979-05-27)")
        XCTAssertEqual(error("1979-05-27T7:32:00"),
                       "line 2: a time is written HH:MM:SS with every digit, seconds included (e.g. 07:32:00); one must follow the date and its T")
        XCTAssertEqual(error("07:32:00."), "line 2: a fraction of a second needs digits after the point")
        XCTAssertEqual(error("1979-05-27T07:32:00+8:00"), "line 2: a time offset is written Z, +HH:MM or -HH:MM")
        XCTAssertEqual(error("1979-05-27T07:32:00+24:00"), "line 2: time offset +24:00 does not exist; offsets run -23:59 to +23:59")
        XCTAssertEqual(error("07:32:00Z"),
                       "line 2: unexpected 'Z' after a date-time; TOML writes 1979-05-27T07:32:00Z, 1979-05-27T07:32:00, 1979-05-27 or 07:32:00")
    }

    func testAConfigKeyGivenADateTimeIsAWrongTypeWithItsLine() {
        let errors = GatewayConfigFixture().errors("""
            [gateway]
            drain_timeout = 00:00:15
            public_address = 2026-11-28
            [limits]
            max_connections = 2026-11-28T02:25:00Z
            """)
        XCTAssertEqual(errors, [
            "/etc/fastgw/gateway.toml:8: drain_timeout must be a string, not the local time 00:00:15 (quote it to make it a string)",
            "/etc/fastgw/gateway.toml:9: public_address must be a string, not the local date 2026-11-28 (quote it to make it a string)",
            "/etc/fastgw/gateway.toml:11: max_connections must be an integer, not the offset date-time 2026-11-28T02:25:00Z",
        ])
    }
}
