import XCTest
@testable import Protocol

final class ForwardAuthExchangeTests: XCTestCase {
    private let original = ForwardAuthOriginal(
        method: "POST", uri: "/admin/x?y=1", host: "app.example.com", scheme: "https", client: IPAddress("2001:db8::7")!,
        fields: [HeaderField("Cookie", "s=1"), HeaderField("authorization", "Bearer t"), HeaderField("X-Secret", "no"),
                 HeaderField("Accept", "text/html"), HeaderField("Cookie", "t=2")])

    private func answer(_ chunks: [String], copy: [String] = ["X-Auth-User"], close: Bool = false) -> ForwardAuthAnswer? {
        var exchange = ForwardAuthExchange(copy: copy)
        for chunk in chunks {
            if case .answer(let a) = exchange.feed(Array(chunk.utf8)) { return a }
        }
        return close ? exchange.endOfInput() : nil
    }

    func testRequestCarriesTheOriginalInForwardedFields() throws {
        let target = try ForwardAuthTarget.parse("http://127.0.0.1:4180/oauth2/auth?x=1").get()
        let text = String(decoding: ForwardAuthExchange.request(to: target, for: original) ?? [], as: UTF8.self)
        XCTAssertEqual(text, """
            GET /oauth2/auth?x=1 HTTP/1.1\r
            Host: 127.0.0.1:4180\r
            X-Forwarded-Method: POST\r
            X-Forwarded-Proto: https\r
            X-Forwarded-Host: app.example.com\r
            X-Forwarded-Uri: /admin/x?y=1\r
            X-Forwarded-For: 2001:db8::7\r
            authorization: Bearer t\r
            Accept: text/html\r
            Cookie: s=1; t=2\r
            Connection: close\r
            \r

            """)
        var hostile = original
        hostile.uri = "/x\r\nX-Injected: 1"
        // Not sent at all: a subrequest without its X-Forwarded-Uri could be allowed by default.
        XCTAssertNil(ForwardAuthExchange.request(to: target, for: hostile))
        var nul = original
        nul.fields.append(HeaderField("Cookie", "a\u{0}b"))
        XCTAssertNil(ForwardAuthExchange.request(to: target, for: nul))
    }

    func testTargets() {
        XCTAssertEqual(try ForwardAuthTarget.parse("http://auth.internal/").get(), ForwardAuthTarget(host: "auth.internal", port: 80, path: "/"))
        XCTAssertEqual(try ForwardAuthTarget.parse("http://[::1]:9000").get(), ForwardAuthTarget(host: "::1", port: 9000, path: "/"))
        XCTAssertEqual(try ForwardAuthTarget.parse("http://[::1]:9000").get().authority, "[::1]:9000")
        for bad in ["https://a/", "ftp://a/", "http://", "http://a:0/", "http://a:65536/", "http://a:+1/", "http://u@a/",
                    "http://a/x y", "http://a/#f", "http://[zz]/", "http://[::1/", "http://a b/"] {
            XCTAssertNil(try? ForwardAuthTarget.parse(bad).get(), bad)
        }
        guard case .failure(let why) = ForwardAuthTarget.parse("https://a/") else { return XCTFail() }
        XCTAssertTrue(why.reason.contains("not supported yet"))
    }

    func testAllowCopiesOnlyNamedFieldsAndDecidesOnTheHead() {
        XCTAssertEqual(answer(["HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Other: 1\r\nx-auth-user: again\r\nContent-Length: 99999999\r\n\r\n"]),
                       .allow(upstreamFields: [HeaderField("X-Auth-User", "alice"), HeaderField("X-Auth-User", "again")]))
        XCTAssertEqual(answer(["HTTP/1.1 204 No Content\r\n\r\n"], copy: []), .allow(upstreamFields: []))
    }

    func testRefusalsAndRedirectsCarryTheirBodyAndFields() {
        XCTAssertEqual(answer(["HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 4\r\nX-Auth-User: x\r\n\r\nno", "pe"]),
                       .respond(status: 401, fields: [HeaderField("WWW-Authenticate", "Bearer")], body: Array("nope".utf8)))
        XCTAssertEqual(answer(["HTTP/1.1 302 Found\r\nLocation: /sign_in\r\nSet-Cookie: csrf=1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"]),
                       .respond(status: 302, fields: [HeaderField("Location", "/sign_in"), HeaderField("Set-Cookie", "csrf=1")], body: Array("abc".utf8)))
        XCTAssertEqual(answer(["HTTP/1.0 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nbye"], close: true),
                       .respond(status: 403, fields: [HeaderField("Content-Type", "text/plain")], body: Array("bye".utf8)))
    }

    func testEverythingElseFailsClosed() {
        func status(_ a: ForwardAuthAnswer?) -> Int? {
            if case .fail(let s, _) = a { return s }
            return nil
        }
        XCTAssertEqual(status(answer(["HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"])), 502)
        XCTAssertEqual(status(answer(["HTTP/1.1 404 Not Found\r\n\r\n"])), 502)
        XCTAssertEqual(status(answer(["HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"])), 502, "redirect without Location")
        XCTAssertEqual(status(answer(["HTTP/1.1 100 Continue\r\n\r\n"])), 502)
        XCTAssertEqual(status(answer(["garbage\r\n\r\n"])), 502)
        XCTAssertEqual(status(answer(["SSH-2.0-OpenSSH\r\n"], close: true)), 502)
        XCTAssertEqual(status(answer([], close: true)), 502)
        XCTAssertEqual(status(answer(["HTTP/1.1 401 U\r\nContent-Length: 10\r\n\r\nshort"], close: true)), 502)
        XCTAssertEqual(status(answer(["HTTP/1.1 401 U\r\nContent-Length: 1, 2\r\n\r\n"])), 502)
        XCTAssertEqual(status(answer(["HTTP/1.1 401 U\r\nContent-Length: 70000\r\n\r\n"])), 502, "declared too large")
        XCTAssertEqual(status(answer(["HTTP/1.1 401 U\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])), 502)
        let big = String(repeating: "x", count: 40_000)
        XCTAssertEqual(status(answer(["HTTP/1.1 401 U\r\n\r\n", big, big], close: true)), 502, "until-close body over the bound")
        XCTAssertEqual(status(answer(["HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 20_000)])), 502, "head over the bound")
    }
}
