import Protocol
import XCTest

final class ConfigValuesTests: XCTestCase {
    func testDurations() {
        XCTAssertEqual(ConfigValues.duration("15s"), .seconds(15))
        XCTAssertEqual(ConfigValues.duration("2m"), .seconds(120))
        XCTAssertEqual(ConfigValues.duration("500ms"), .milliseconds(500))
        XCTAssertEqual(ConfigValues.duration("1h30m"), .seconds(5400))
        XCTAssertNil(ConfigValues.duration("15"))
        XCTAssertNil(ConfigValues.duration("fast"))
        XCTAssertNil(ConfigValues.duration(""))
    }

    func testSizes() {
        XCTAssertEqual(ConfigValues.size("4MiB"), 4 << 20)
        XCTAssertEqual(ConfigValues.size("256KiB"), 256 << 10)
        XCTAssertEqual(ConfigValues.size("65536"), 65536)
        XCTAssertNil(ConfigValues.size("4 parsecs"))
    }

    func testHostPort() {
        XCTAssertEqual(try HostPort.parse("0.0.0.0:7443").get(), HostPort(host: "0.0.0.0", port: 7443))
        XCTAssertEqual(try HostPort.parse("[::1]:80").get(), HostPort(host: "::1", port: 80))
        XCTAssertEqual(HostPort.parse("host:70000"), .failure(.portOutOfRange(70000)))
        XCTAssertEqual(HostPort.parse("host"), .failure(.missingPort))
        XCTAssertEqual(HostPort(host: "::1", port: 80).description, "[::1]:80")
        XCTAssertEqual(try UpstreamAddress.parse("unix:/run/app.sock").get(), .unix(path: "/run/app.sock"))
    }
}
