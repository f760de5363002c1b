import XCTest
@testable import Protocol

final class BasicCredentialsTests: XCTestCase {
    func testParsesRFC7617Examples() {
        // RFC 7617 §2: Aladdin / open sesame.
        XCTAssertEqual(BasicCredentials.parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
                       BasicCredentials(user: "Aladdin", password: "open sesame"))
        XCTAssertEqual(BasicCredentials.parse("basic  QWxhZGRpbjpvcGVuIHNlc2FtZQ==")?.user, "Aladdin")
        XCTAssertEqual(BasicCredentials.parse("BASIC dGVzdDoxMjPCow==")?.password, "123£", "UTF-8 (RFC 7617 §2.1 example)")
        // The password may contain colons; only the first one separates.
        XCTAssertEqual(BasicCredentials.parse("Basic " + b64("u:p:q")), BasicCredentials(user: "u", password: "p:q"))
        XCTAssertEqual(BasicCredentials.parse("Basic " + b64("u:")), BasicCredentials(user: "u", password: ""))
        XCTAssertEqual(BasicCredentials.parse("Basic " + b64("ab:c")), BasicCredentials(user: "ab", password: "c"), "one pad")
        XCTAssertEqual(BasicCredentials.parse("Basic " + b64("abc:d")), BasicCredentials(user: "abc", password: "d"), "no pad")
    }

    func testRefusesHostileOrLooseValues() {
        let refused = [
            "", "Basic", "Basic ", "Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "BasicQWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ",          // padding missing
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZR==",        // non-zero unused bits
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ===",
            "Basic QWxh=GRpbjpvcGVuIHNlc2FtZQ==",        // padding in the middle
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ== ",       // trailing space
            "Basic QWxhZGRp bjpvcGVuIHNlc2FtZQ==",
            "Basic QWxhZGRpbjpvcGVu-HNlc2FtZQ==",        // base64url alphabet
            "Basic " + b64("nocolon"),
            "Basic " + b64(":password"),                // empty user
            "Basic " + b64("u:p\u{0}q"),
            "Basic " + b64("u\r\nX-Evil: 1:p"),
            "Basic " + b64("u:p\u{7f}"),
            "Basic " + String(repeating: "QUFB", count: 1100),
        ]
        for value in refused { XCTAssertNil(BasicCredentials.parse(value), value) }
        XCTAssertNil(BasicCredentials.parse("Basic " + base64([0x75, 0x3a, 0xff, 0xfe])), "not UTF-8")
    }

    func testChallengeQuotesTheRealm() {
        XCTAssertEqual(BasicCredentials.challenge(realm: "staging"), "Basic realm=\"staging\", charset=\"UTF-8\"")
        XCTAssertEqual(BasicCredentials.challenge(realm: "a\"b\\c\r\nSet-Cookie: x"),
                       "Basic realm=\"a\\\"b\\\\cSet-Cookie: x\", charset=\"UTF-8\"")
        XCTAssertEqual(BasicCredentials.challenge(realm: "Bühne"), "Basic realm=\"Bühne\", charset=\"UTF-8\"")
        XCTAssertNil(BasicCredentials.realmProblem("Staging area"))
        XCTAssertNotNil(BasicCredentials.realmProblem(""))
        XCTAssertNotNil(BasicCredentials.realmProblem("a\tb"))
        XCTAssertNotNil(BasicCredentials.realmProblem(String(repeating: "r", count: 129)))
    }

    func testBase64RoundTripsEveryLength() {
        var rng = SystemRandomNumberGenerator()
        for length in 0..<64 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            XCTAssertEqual(BasicCredentials.base64Decode(ArraySlice(base64(bytes).utf8)), length == 0 ? nil : bytes)
        }
    }

    private func b64(_ text: String) -> String { base64(Array(text.utf8)) }

    /// An independent encoder (the textbook one) for the test side.
    private func base64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var out = ""
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var v = UInt32(bytes[i]) << 16
            if n > 1 { v |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { v |= UInt32(bytes[i + 2]) }
            for k in 0..<4 { out.append(k <= n ? table[Int(v >> UInt32(18 - 6 * k)) & 63] : "=") }
            i += 3
        }
        return out
    }
}
