import XCTest

@testable import Protocol

final class AcmeJWSTests: XCTestCase {
    func testBase64URLRoundTripsAndRefusesPaddingAndForeignCharacters() {
        XCTAssertEqual(Base64URL.encode(Array("".utf8)), "")
        XCTAssertEqual(Base64URL.encode(Array("f".utf8)), "Zg")
        XCTAssertEqual(Base64URL.encode(Array("fo".utf8)), "Zm8")
        XCTAssertEqual(Base64URL.encode(Array("foo".utf8)), "Zm9v")
        XCTAssertEqual(Base64URL.encode([0xfb, 0xff, 0xfe]), "-__-")
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            XCTAssertEqual(Base64URL.decode(Base64URL.encode(bytes)), bytes)
        }
        XCTAssertNil(Base64URL.decode("Zg=="))
        XCTAssertNil(Base64URL.decode("Z+8/"))
        XCTAssertNil(Base64URL.decode("Zm9vY"))
    }

    /// RFC 7638 §3.1's example key and thumbprint.
    func testThumbprintOfRFC7638Example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        let jwk = JSON.object(["kty": .string("RSA"), "n": .string(n), "e": .string("AQAB")])
        XCTAssertEqual(AcmeJWK.thumbprint(of: jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    }

    func testECJWKHasRequiredMembersInOrderAndKeyAuthorization() {
        let jwk = AcmeJWK(x: [UInt8](repeating: 1, count: 32), y: [UInt8](repeating: 2, count: 32))
        XCTAssertEqual(
            jwk.json.serialized(),
            "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\",\"y\":\"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI\"}")
        XCTAssertEqual(jwk.keyAuthorization(token: "tok"), "tok." + jwk.thumbprint)
    }

    func testFlattenedJWSSignsProtectedDotPayload() throws {
        var signed: [UInt8] = []
        let jws = try AcmeJWS.flattened(payload: .object(["a": .bool(true)]), url: "https://x/acct", nonce: "N1", signer: .kid("https://x/acct/1")) {
            (input) throws(AcmeJWS.SigningFailed) -> [UInt8] in
            signed = input
            return [UInt8](repeating: 7, count: 64)
        }
        let protected = try XCTUnwrap(jws["protected"]?.string)
        let payload = try XCTUnwrap(jws["payload"]?.string)
        XCTAssertEqual(signed, Array((protected + "." + payload).utf8))
        let header = try JSON.parse(XCTUnwrap(Base64URL.decode(protected)))
        XCTAssertEqual(header, .object(["alg": .string("ES256"), "kid": .string("https://x/acct/1"), "nonce": .string("N1"), "url": .string("https://x/acct")]))
        XCTAssertEqual(payload, Base64URL.encode("{\"a\":true}"))
        XCTAssertEqual(jws["signature"]?.string, Base64URL.encode([UInt8](repeating: 7, count: 64)))
    }

    func testPostAsGetHasEmptyPayloadAndNewAccountCarriesJWK() throws {
        let jwk = AcmeJWK(x: [UInt8](repeating: 1, count: 32), y: [UInt8](repeating: 2, count: 32))
        let jws = try AcmeJWS.flattened(payload: nil, url: "u", nonce: "n", signer: .jwk(jwk)) { (_) throws(AcmeJWS.SigningFailed) -> [UInt8] in
            [UInt8](repeating: 0, count: 64)
        }
        XCTAssertEqual(jws["payload"]?.string, "")
        let header = try JSON.parse(XCTUnwrap(Base64URL.decode(XCTUnwrap(jws["protected"]?.string))))
        XCTAssertEqual(header["jwk"], jwk.json)
        XCTAssertNil(header["kid"])
    }

    func testWrongSignatureLengthIsRefused() {
        XCTAssertThrowsError(try AcmeJWS.flattened(payload: nil, url: "u", nonce: "n", signer: .kid("k")) { (_) throws(AcmeJWS.SigningFailed) -> [UInt8] in
            [1, 2, 3]
        })
    }

    func testDERSignatureBecomesFixedWidthRS() {
        // r with a sign byte (33 bytes), s short (31 bytes): both come out as 32.
        let r = [0x00, 0x80] + [UInt8](repeating: 0x11, count: 31)
        let s = [UInt8](repeating: 0x22, count: 31)
        let der: [UInt8] = [0x30, UInt8(2 + r.count + 2 + s.count), 0x02, UInt8(r.count)] + r + [0x02, UInt8(s.count)] + s
        let raw = AcmeJWS.rawSignature(fromDER: der)
        XCTAssertEqual(raw, [0x80] + [UInt8](repeating: 0x11, count: 31) + [0x00] + [UInt8](repeating: 0x22, count: 31))
        XCTAssertNil(AcmeJWS.rawSignature(fromDER: Array(der.dropLast())))
        XCTAssertNil(AcmeJWS.rawSignature(fromDER: der + [0]))
        XCTAssertNil(AcmeJWS.rawSignature(fromDER: [0x30, 0x03, 0x02, 0x01]))
        XCTAssertNil(AcmeJWS.rawSignature(fromDER: [0x30, 0x84, 0xff, 0xff, 0xff, 0xff]))
    }

    /// RFC 9773's example: AKI 69:88:5B:..., serial 00:87:65:43:21.
    func testARICertIDOfRFC9773Example() {
        let aki: [UInt8] = [0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4]
        XCTAssertEqual(AcmeARI.certID(authorityKeyIdentifier: aki, serial: [0x87, 0x65, 0x43, 0x21]), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
        XCTAssertEqual(AcmeARI.certID(authorityKeyIdentifier: aki, serial: [0x00, 0x87, 0x65, 0x43, 0x21]), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
        XCTAssertTrue(AcmeARI.certID(authorityKeyIdentifier: aki, serial: [0x12, 0x34]).hasSuffix(".EjQ"))
    }

    func testARIWindowAndRFC3339() throws {
        let json = try JSON.parse(Array(#"{"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-03T04:00:00.123+02:00"}}"#.utf8))
        let window = try XCTUnwrap(AcmeARI.suggestedWindow(json))
        XCTAssertEqual(window.start, 1_735_790_400)
        XCTAssertEqual(window.end, 1_735_790_400 + 86400 - 7200)
        XCTAssertNil(AcmeARI.suggestedWindow(.object([:])))
        XCTAssertNil(HTTPDate.parseRFC3339("2025-13-02T04:00:00Z"))
        XCTAssertNil(HTTPDate.parseRFC3339("2025-01-02T04:00:00"))
        XCTAssertEqual(HTTPDate.parseIMFFixdate("Sun, 06 Nov 1994 08:49:37 GMT"), 784_111_777)
    }

    func testTLSALPNIdentifierValueIsDEROctetStringOfSHA256() {
        let value = AcmeTLSALPN.acmeIdentifierValue(keyAuthorization: "abc")
        XCTAssertEqual(Array(value.prefix(2)), [0x04, 0x20])
        XCTAssertEqual(Hex.encode(Array(value.dropFirst(2))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
