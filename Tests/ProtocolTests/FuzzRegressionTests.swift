import Protocol
import XCTest

/// Inputs that crashed a parser of outside bytes (found while writing or running the fuzz
/// targets in Fuzz/), kept so the crash cannot come back.
final class FuzzRegressionTests: XCTestCase {
    /// `value * 3600` trapped on overflow: `fastgw check` died of SIGILL, and so would a
    /// daemon reloading the file.
    func testDurationsThatOverflowAreRefused() {
        XCTAssertNil(ConfigValues.duration("9999999999999999h"))
        XCTAssertNil(ConfigValues.duration("153722867280913m"))
        XCTAssertNil(ConfigValues.duration(String(repeating: "9223372036854775807ms", count: 20)))
        XCTAssertNil(ConfigValues.duration("9223372036854775808s"))
        XCTAssertEqual(ConfigValues.duration("2562047788015h"), .seconds(2_562_047_788_015 * 3600))
        XCTAssertEqual(ConfigValues.duration("1h30m15s250ms"), .milliseconds(5_415_250))

        let text = "[tunnel]\ncert = \"c\"\nkey = \"k\"\nkeepalive_interval = \"9999999999999999h\"\n[[agent]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\n"
        guard case .failure(let e) = GatewayConfig.parse(text: text, file: "gw.toml", readFile: { _ in "" }) else { return XCTFail("accepted") }
        XCTAssertTrue(e.firstLine.hasPrefix("gw.toml:4: keepalive_interval \"9999999999999999h\" is not a duration"), e.firstLine)
    }
}
