import Foundation
import Logging
import XCTest

@testable import Sidecar

final class SystemdTests: XCTestCase {
    func testWatchdogGatePingsOnlyWhileEveryLoopIsFresh() {
        var gate = WatchdogGate(maxAgeNanoseconds: 1_000)
        XCTAssertEqual(gate.check(lastRun: [900, 950], now: 1_500), .ping)
        // Loop 1 stalls: the first check says so (log it), later ones do not repeat it.
        XCTAssertEqual(gate.check(lastRun: [2_400, 950], now: 2_500), .withhold(stuck: [1], ages: [1_550], newly: true))
        XCTAssertEqual(gate.check(lastRun: [2_900, 950], now: 3_000), .withhold(stuck: [1], ages: [2_050], newly: false))
        XCTAssertEqual(gate.check(lastRun: [3_400, 3_450], now: 3_500), .ping)
        XCTAssertEqual(gate.stuck, [])
    }

    func testJournalFieldsAndPriorities() {
        XCTAssertEqual(JournalLogHandler.fieldName("service"), "FASTGW_SERVICE")
        XCTAssertEqual(JournalLogHandler.fieldName("bytes_in"), "FASTGW_BYTES_IN")
        XCTAssertEqual(JournalLogHandler.fieldName("retry-in.ms"), "FASTGW_RETRY_IN_MS")
        XCTAssertEqual(Logger.Level.allCases.map(JournalLogHandler.priority), [7, 7, 6, 5, 4, 3, 2])
    }

    func testKeyEventsHaveDistinctFixedMessageIDs() {
        let ids = KeyEvent.allCases.map(\.messageID)
        XCTAssertEqual(Set(ids).count, ids.count)
        XCTAssertTrue(ids.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) })
        XCTAssertEqual(KeyEvent.reloadFailed.messageID, "7e078716366c4d4eab5483b40ce5532a")
        let tagged = Logger.Metadata.event(.drainStarted, ["timeout_ms": "5"])
        XCTAssertEqual(tagged["event"], "drain_started")
        XCTAssertEqual(tagged["timeout_ms"], "5")
    }

    /// fastgw(8) is where operators look the IDs up: it must list every one.
    func testManPageListsEveryMessageID() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let page = try String(contentsOf: repo.appendingPathComponent("man/fastgw.8"), encoding: .utf8)
        for event in KeyEvent.allCases {
            XCTAssertTrue(page.contains(".B \(event.rawValue)\n.B MESSAGE_ID=\(event.messageID)"), "\(event) missing from man/fastgw.8")
        }
    }
}
