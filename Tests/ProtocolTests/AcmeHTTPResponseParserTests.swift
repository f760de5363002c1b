import XCTest

@testable import Protocol

final class AcmeHTTPResponseParserTests: XCTestCase {
    private func parseWhole(_ text: String, maxBody: Int = 1 << 20, byteByByte: Bool = false) throws -> AcmeHTTPResponse? {
        var parser = AcmeHTTPResponseParser(maxBody: maxBody)
        let bytes = Array(text.utf8)
        if byteByByte {
            for b in bytes { if case .complete(let r) = try parser.feed([b]) { return r } }
            return nil
        }
        if case .complete(let r) = try parser.feed(bytes) { return r }
        return nil
    }

    func testContentLengthResponseWithACMEHeaders() throws {
        let text = "HTTP/1.1 201 Created\r\nReplay-Nonce: abc\r\nLocation: https://x/order/1\r\nRetry-After: 3\r\n"
            + "Link: <https://x/dir>;rel=\"index\", <https://x/cert/1/1>;rel=\"alternate\"\r\nLink: <https://x/issuer>; rel=up\r\n"
            + "Content-Length: 11\r\n\r\n{\"a\":\"b\"}\r\n"
        for byteByByte in [false, true] {
            let r = try XCTUnwrap(parseWhole(text, byteByByte: byteByByte))
            XCTAssertEqual(r.status, 201)
            XCTAssertEqual(r.replayNonce, "abc")
            XCTAssertEqual(r.location, "https://x/order/1")
            XCTAssertEqual(r.retryAfter(now: 0), 3)
            XCTAssertEqual(r.links(rel: "alternate"), ["https://x/cert/1/1"])
            XCTAssertEqual(r.links(rel: "up"), ["https://x/issuer"])
            XCTAssertEqual(r.body.count, 11)
        }
    }

    func testChunkedBodyAndInterimResponse() throws {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"
        for byteByByte in [false, true] {
            let r = try XCTUnwrap(parseWhole(text, byteByByte: byteByByte))
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(String(decoding: r.body, as: UTF8.self), "abcdefg")
        }
    }

    func testCloseDelimitedBodyEndsAtEndOfInput() throws {
        var parser = AcmeHTTPResponseParser()
        guard case .needMore = try parser.feed(Array("HTTP/1.0 200 OK\r\n\r\nhello".utf8)) else { return XCTFail() }
        XCTAssertEqual(try parser.endOfInput().body, Array("hello".utf8))
    }

    func testTruncatedAnswersAreErrors() throws {
        var parser = AcmeHTTPResponseParser()
        _ = try parser.feed(Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".utf8))
        XCTAssertThrowsError(try parser.endOfInput())
        var empty = AcmeHTTPResponseParser()
        XCTAssertThrowsError(try empty.endOfInput())
    }

    func testHostileAnswersAreRefused() {
        XCTAssertThrowsError(try parseWhole("SSH-2.0-OpenSSH\r\n\r\n"))
        XCTAssertThrowsError(try parseWhole("HTTP/1.1 2000 OK\r\n\r\n"))
        XCTAssertThrowsError(try parseWhole("HTTP/1.1 200 OK\r\nbad header\r\n\r\n"))
        XCTAssertThrowsError(try parseWhole("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"))
        XCTAssertThrowsError(try parseWhole("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"))
        XCTAssertThrowsError(try parseWhole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"))
        XCTAssertThrowsError(try parseWhole("HTTP/1.1 200 OK\r\nX: \u{1}\r\n\r\n"))
        // Oversized: declared, chunked, close-delimited, and a head without end.
        XCTAssertThrowsError(try parseWhole("HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", maxBody: 1000))
        XCTAssertThrowsError(try parseWhole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + String(repeating: "x", count: 2000), maxBody: 1000))
        XCTAssertThrowsError(try parseWhole("HTTP/1.1 200 OK\r\n\r\n" + String(repeating: "x", count: 2000), maxBody: 1000))
        XCTAssertThrowsError(try parseWhole("HTTP/1.1 200 OK\r\nX: " + String(repeating: "x", count: 20000)))
    }

    func testHeadAnswerHasNoBody() throws {
        var parser = AcmeHTTPResponseParser(bodyless: true)
        guard case .complete(let r) = try parser.feed(Array("HTTP/1.1 200 OK\r\nReplay-Nonce: n\r\nContent-Length: 40\r\n\r\n".utf8)) else {
            return XCTFail("a HEAD answer is complete after its head")
        }
        XCTAssertEqual(r.replayNonce, "n")
    }
}

final class AcmeResourcesTests: XCTestCase {
    private func json(_ s: String) throws -> JSON { try JSON.parse(Array(s.utf8)) }

    func testProblemDocumentText() throws {
        let p = try XCTUnwrap(AcmeProblem(json: json(#"{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"no","subproblems":[{"type":"urn:ietf:params:acme:error:caa","detail":"CAA forbids","identifier":{"type":"dns","value":"a.example"}}]}"#)))
        XCTAssertEqual(p.shortType, "rejectedIdentifier")
        XCTAssertEqual(p.description, "rejectedIdentifier: no (a.example: caa: CAA forbids)")
        XCTAssertNil(AcmeProblem(body: Array("<html>".utf8)))
        XCTAssertNil(AcmeProblem(json: .object([:])))
    }

    func testDirectoryOrderAuthorization() throws {
        let d = try XCTUnwrap(AcmeDirectory(json: json(#"{"newNonce":"n","newAccount":"a","newOrder":"o","renewalInfo":"r","meta":{"termsOfService":"t"}}"#)))
        XCTAssertEqual(d.renewalInfo, "r")
        XCTAssertEqual(d.termsOfService, "t")
        XCTAssertNil(AcmeDirectory(json: try json(#"{"newNonce":"n"}"#)))

        let o = try XCTUnwrap(AcmeOrder(json: json(#"{"status":"invalid","authorizations":["z1"],"finalize":"f","error":{"type":"urn:ietf:params:acme:error:unauthorized","detail":"d"}}"#)))
        XCTAssertEqual(o.authorizations, ["z1"])
        XCTAssertEqual(o.error?.shortType, "unauthorized")

        let token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
        let a = try XCTUnwrap(AcmeAuthorization(json: json(#"{"status":"pending","identifier":{"type":"dns","value":"a.example"},"challenges":[{"type":"dns-01","url":"c0","token":"\#(token)","status":"pending"},{"type":"tls-alpn-01","url":"c1","token":"\#(token)","status":"pending"},{"type":"http-01","url":"c2","token":"../../etc/passwd","status":"pending"}]}"#)))
        XCTAssertEqual(a.challenge(preferring: [.http01, .tlsALPN01])?.1.url, "c1", "a token that is not base64url is never used")
        XCTAssertEqual(a.challenge(preferring: [.tlsALPN01])?.0, .tlsALPN01)
        XCTAssertNil(a.challenge(preferring: [.http01]))
    }

    func testPollingDelayBounds() {
        XCTAssertEqual(AcmePolling.delay(attempt: 0, retryAfter: nil, remaining: 100), 1)
        XCTAssertEqual(AcmePolling.delay(attempt: 3, retryAfter: nil, remaining: 100), 8)
        XCTAssertEqual(AcmePolling.delay(attempt: 9, retryAfter: nil, remaining: 100), 10)
        XCTAssertEqual(AcmePolling.delay(attempt: 0, retryAfter: 3600, remaining: 100), 60)
        XCTAssertEqual(AcmePolling.delay(attempt: 0, retryAfter: 0, remaining: 100), 1)
        XCTAssertEqual(AcmePolling.delay(attempt: 0, retryAfter: 30, remaining: 5), 5)
        XCTAssertNil(AcmePolling.delay(attempt: 0, retryAfter: nil, remaining: 0))
    }

    func testURLsAndHostNames() throws {
        let u = try XCTUnwrap(AcmeURL("https://127.0.0.1:14000/dir?x=1"))
        XCTAssertEqual(u.host, "127.0.0.1")
        XCTAssertEqual(u.port, 14000)
        XCTAssertEqual(u.target, "/dir?x=1")
        XCTAssertEqual(u.authority, "127.0.0.1:14000")
        let v6 = try XCTUnwrap(AcmeURL("http://[::1]:8080"))
        XCTAssertEqual(v6.host, "::1")
        XCTAssertEqual(v6.target, "/")
        XCTAssertEqual(AcmeURL("https://acme.example/directory")?.port, 443)
        for bad in ["ftp://x/", "https://user@x/", "https://x:0/", "https://x:99999/", "https://x/a b", "https://x/#f", "https:///x"] {
            XCTAssertNil(AcmeURL(bad), bad)
        }
        XCTAssertTrue(AcmeHostName.isValid("www.example.com"))
        XCTAssertTrue(AcmeHostName.isValid("xn--bcher-kva.example"))
        for bad in ["*.example.com", "localhost", "a..b", "-a.example", "a.example,DNS:evil.example", "1.2.3.4", "a.example.", ""] {
            XCTAssertFalse(AcmeHostName.isValid(bad), bad)
        }
    }
}

extension AcmeHTTPResponseParserTests {
    private func retryAfter(_ value: String, now: Int = 0) throws -> Int? {
        let text = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: \(value)\r\nContent-Length: 0\r\n\r\n"
        return try XCTUnwrap(parseWhole(text, byteByByte: false)).retryAfter(now: now)
    }

    /// A hostile CA's huge numbers in a Retry-After date must not trap the daemon.
    func testRetryAfterRefusesHugeDateFieldsAndIsClamped() throws {
        XCTAssertNil(try retryAfter("Sun, 06 Nov 99999999999999999 08:49:37 GMT"))
        XCTAssertNil(try retryAfter("Sun, 9223372036854775807 Nov 1994 08:49:37 GMT"))
        XCTAssertNil(try retryAfter("Sun, 06 Nov 1994 9223372036854775807:49:37 GMT"))
        XCTAssertNil(try retryAfter("Sun, 06 Nov 1994 08:49:-1 GMT"))
        XCTAssertNil(try retryAfter("Sun, 06 Nov 1994 25:49:37 GMT"))
        XCTAssertNil(try retryAfter("Sun, 06 Nov +994 08:49:37 GMT"))
        XCTAssertEqual(try retryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now: 784_111_777 - 30), 30)
        XCTAssertEqual(try retryAfter("Sun, 6 Nov 1994 08:49:37 GMT", now: 784_111_777), 0)
        XCTAssertEqual(try retryAfter("Fri, 31 Dec 9999 23:59:59 GMT"), AcmeHTTPResponse.retryAfterCeiling)
        XCTAssertEqual(try retryAfter("99999999999999999999999"), AcmeHTTPResponse.retryAfterCeiling)
        XCTAssertEqual(try retryAfter("7200"), 7200)
        XCTAssertNil(try retryAfter("-5"))
    }
}

extension AcmeResourcesTests {
    /// A server's problem text reaches logs and `last_error` cut to a bounded size.
    func testProblemTextIsCutToABoundedSize() {
        let long = AcmeProblem(type: "urn:ietf:params:acme:error:malformed", detail: String(repeating: "é", count: 5000),
                               subproblems: [String(repeating: "x", count: 5000)])
        XCTAssertLessThanOrEqual(long.description.utf8.count, AcmeProblem.maximumTextBytes)
        XCTAssertTrue(long.description.hasPrefix("malformed: éé"))
        XCTAssertTrue(long.description.hasSuffix("…"))
        XCTAssertEqual(AcmeProblem(type: "urn:ietf:params:acme:error:badNonce", detail: "stale").description, "badNonce: stale")
    }

    func testTokensTheListenersCannotServeAreRefused() throws {
        func challenge(_ token: String) throws -> AcmeChallenge {
            try XCTUnwrap(AcmeChallenge(json: .object(["type": .string("http-01"), "url": .string("https://x/c"), "status": .string("pending"), "token": .string(token)])))
        }
        XCTAssertTrue(try challenge(String(repeating: "A", count: AcmeChallengePath.maximumTokenLength)).hasValidToken)
        XCTAssertFalse(try challenge(String(repeating: "A", count: AcmeChallengePath.maximumTokenLength + 4)).hasValidToken)
    }
}
