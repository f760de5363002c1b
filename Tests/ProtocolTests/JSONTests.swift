import Protocol
import XCTest

final class JSONTests: XCTestCase {
    func testParseAndSerialise() throws {
        let text = #"{"a":[1,2.5,true,null],"b":"q\"\\\n\u00e9\ud83d\ude00","c":{}}"#
        let v = try JSON.parse(Array(text.utf8))
        XCTAssertEqual(v["a"], .array([.number(1), .number(2.5), .bool(true), .null]))
        XCTAssertEqual(v["b"]?.string, "q\"\\\né😀")
        XCTAssertEqual(v.serialized(), #"{"a":[1,2.5,true,null],"b":"q\"\\\né😀","c":{}}"#)
        XCTAssertEqual(JSON.string("\u{1}").serialized(), #""\u0001""#)
    }

    func testRejectsMalformedInput() {
        for bad in ["", "{", "{\"a\" 1}", "[1,]", "\"unterminated", "tru", "{\"a\":1} x", "\"\u{1}\"",
                    String(repeating: "[", count: 100) + String(repeating: "]", count: 100)] {
            XCTAssertThrowsError(try JSON.parse(Array(bad.utf8)), bad)
        }
    }
}
