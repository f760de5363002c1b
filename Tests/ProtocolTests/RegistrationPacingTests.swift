import Protocol
import XCTest

final class RegistrationPacingTests: XCTestCase {
    func testAMessageOverTheServiceLimitIsRefusedWhole() {
        var pacing = RegistrationPacing()
        XCTAssertEqual(pacing.judge(services: RegistrationPacing.maxServices, at: .zero), .accept)
        XCTAssertEqual(pacing.judge(services: 20_000, at: .seconds(1)), .tooManyServices(20_000))
    }

    func testRegistrationsFasterThanTheWindowAllowsAreAFlood() {
        var pacing = RegistrationPacing()
        for i in 0..<RegistrationPacing.maxPerWindow {
            XCTAssertEqual(pacing.judge(services: 1, at: .milliseconds(i)), .accept, "\(i)")
        }
        XCTAssertEqual(pacing.judge(services: 1, at: .milliseconds(100)), .flood)
        // A new window starts the count again: reloads now and then are never a flood.
        XCTAssertEqual(pacing.judge(services: 1, at: RegistrationPacing.window + .milliseconds(1)), .accept)
    }
}
