import Protocol
import XCTest

final class ForwardingSelectionTests: XCTestCase {
    private let fields = [
        HeaderField(":method", "GET"), HeaderField("accept", "*/*"),
        HeaderField("forwarded", "for=192.0.2.7;proto=http;host=a.example"),
        HeaderField("x-forwarded-for", "192.0.2.7"), HeaderField("x-forwarded-proto", "http"),
        HeaderField("x-forwarded-host", "a.example"), HeaderField("fastgw-client", "192.0.2.7:40000"),
    ]

    private func names(_ s: Set<ForwardingSelection.Family>, _ f: [HeaderField]? = nil) -> [String] {
        ForwardingSelection(s).apply(to: f ?? fields).map(\.name)
    }

    func testDefaultPassesTheGatewaysFieldsOn() {
        XCTAssertEqual(ForwardingSelection.default.apply(to: fields), fields)
    }

    func testEachFamilyAlone() {
        XCTAssertEqual(names([.forwarded]), [":method", "accept", "forwarded", "fastgw-client"])
        XCTAssertEqual(names([.xForwarded]),
                       [":method", "accept", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "fastgw-client"])
        XCTAssertEqual(names([]), [":method", "accept", "fastgw-client"])
        let real = ForwardingSelection([.xRealIP]).apply(to: fields)
        XCTAssertEqual(real.map(\.name), [":method", "accept", "fastgw-client", "x-real-ip"])
        XCTAssertEqual(real["x-real-ip"], "192.0.2.7")
    }

    func testXRealIPIsAlwaysTheAgentsOwn() {
        let claimed = fields + [HeaderField("x-real-ip", "6.6.6.6")]
        XCTAssertNil(ForwardingSelection.default.apply(to: claimed)["x-real-ip"])
        let v6 = [HeaderField("fastgw-client", "[::ffff:10.0.0.1]:1"), HeaderField("x-real-ip", "6.6.6.6")]
        XCTAssertEqual(ForwardingSelection([.xRealIP]).apply(to: v6).filter { $0.name == "x-real-ip" }.map(\.value), ["10.0.0.1"])
        XCTAssertEqual(ForwardingSelection([.xRealIP]).apply(to: [HeaderField("fastgw-client", "[2001:db8::1]:9")])["x-real-ip"], "2001:db8::1")
        // No usable client address: no X-Real-IP at all rather than a wrong one.
        XCTAssertNil(ForwardingSelection([.xRealIP]).apply(to: [HeaderField("fastgw-client", "/run/x.sock")])["x-real-ip"])
    }
}
