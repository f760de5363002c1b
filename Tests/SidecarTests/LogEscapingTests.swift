import XCTest

@testable import Sidecar

/// Values taken from clients reach both log handlers with their control bytes escaped.
final class LogEscapingTests: XCTestCase {
    func testControlBytesAreEscapedOnceForBothHandlers() {
        XCTAssertEqual(LogfmtHandler.escapingControls("GET /a b"), "GET /a b", "plain text is untouched")
        XCTAssertEqual(LogfmtHandler.escapingControls("GET /a\tb\u{0}c\r\nX: 1"), "GET /a\\tb\\x00c\\r\\nX: 1")
        XCTAssertEqual(LogfmtHandler.escapingControls("\u{1b}[31m\u{7f}\u{9b}é"), "\\x1b[31m\\x7f\\u{9b}é")
        XCTAssertEqual(JournalLogHandler.escapingControls("a\u{0}b"), "a\\x00b")
        XCTAssertEqual(LogfmtHandler.quote(LogfmtHandler.escapingControls("GET /\u{0}")), "\"GET /\\\\x00\"")
    }
}
