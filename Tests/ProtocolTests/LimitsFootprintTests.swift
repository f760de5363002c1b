import XCTest

@testable import Protocol

/// The bytes per entry that docs/architecture.md and fastgw(8) state for the bounded tables.
final class LimitsFootprintTests: XCTestCase {
    func testEntrySizesStayAsDocumented() {
        XCTAssertEqual(MemoryLayout<ClientKey>.size, 16)
        // The throttle's per-address state; a slot adds the key and a mark, the index a key
        // and an Int at a load factor of at most 3/4.
        XCTAssertLessThanOrEqual(MemoryLayout<AuthThrottle.Entry>.stride, 40)
        XCTAssertLessThanOrEqual(MemoryLayout<ClockTable<ClientKey, AuthThrottle.Entry>.Slot?>.stride, 64)
    }
}
