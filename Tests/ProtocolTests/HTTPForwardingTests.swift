import Protocol
import XCTest

final class HTTPForwardingTests: XCTestCase {
    private func request(_ lines: String) throws -> PublicRequest {
        let head = try XCTUnwrap(HTTPHeadParser.parse(bytes: Array((lines + "\r\n\r\n").utf8)))
        return try PublicRequest.parse(head).get()
    }

    private func refusal(_ lines: String) -> Int? {
        guard let head = HTTPHeadParser.parse(bytes: Array((lines + "\r\n\r\n").utf8)) else { return nil }
        if case .failure(let r) = PublicRequest.parse(head) { return r.status }
        return nil
    }

    func testTunnelHeadersDropHopByHopAndInternalFieldsAndSetForwarding() throws {
        let r = try request("""
            GET /a?b=1 HTTP/1.1\r
            Host: App.Test\r
            Connection: keep-alive, X-Private\r
            X-Private: secret\r
            Keep-Alive: timeout=5\r
            Fastgw-Service: other\r
            X-Forwarded-For: 10.0.0.1\r
            X-Forwarded-Proto: https\r
            Cookie: a=1\r
            TE: trailers
            """)
        let fields = r.tunnelHeaders(scheme: "http", client: "192.0.2.7", service: "web", requestID: "abc")
        XCTAssertEqual(Array(fields.prefix(4)), [
            HeaderField(":method", "GET"), HeaderField(":scheme", "http"),
            HeaderField(":authority", "App.Test"), HeaderField(":path", "/a?b=1"),
        ])
        let names = fields.map(\.name)
        for gone in ["connection", "x-private", "keep-alive", "host", "te"] { XCTAssertFalse(names.contains(gone), gone) }
        XCTAssertEqual(fields.filter { $0.name.hasPrefix("fastgw-") }, [HeaderField("fastgw-service", "web"), HeaderField("fastgw-request-id", "abc")])
        XCTAssertEqual(fields["x-forwarded-for"], "10.0.0.1, 192.0.2.7")
        XCTAssertEqual(fields["x-forwarded-proto"], "http")
        XCTAssertEqual(fields["x-forwarded-host"], "App.Test")
        XCTAssertEqual(fields["cookie"], "a=1")
        XCTAssertTrue(r.keepAlive)
    }

    func testRequestForms() throws {
        let absolute = try request("GET http://other.test:8080/x HTTP/1.1\r\nHost: ignored.test")
        XCTAssertEqual(absolute.authority, "other.test:8080")
        XCTAssertEqual(absolute.path, "/x")
        XCTAssertEqual(try request("OPTIONS * HTTP/1.1\r\nHost: a.test").path, "*")
        let old = try request("GET / HTTP/1.0\r\nHost: a.test")
        XCTAssertFalse(old.keepAlive)
        XCTAssertTrue(try request("GET / HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive").keepAlive)
        XCTAssertFalse(try request("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close").keepAlive)
        XCTAssertTrue(try request("POST / HTTP/1.1\r\nHost: a.test\r\nExpect: 100-Continue\r\nContent-Length: 3").expectsContinue)
    }

    func testRefusals() {
        XCTAssertEqual(refusal("GET / HTTP/1.1"), 400)  // no Host
        XCTAssertEqual(refusal("GET / HTTP/1.1\r\nHost: a\r\nHost: b"), 400)
        XCTAssertEqual(refusal("GET / HTTP/3.0\r\nHost: a"), 505)
        XCTAssertEqual(refusal("CONNECT a:443 HTTP/1.1\r\nHost: a"), 405)
        XCTAssertEqual(refusal("GET x HTTP/1.1\r\nHost: a"), 400)
        XCTAssertEqual(refusal("GET / HTTP/1.1\r\nHost: a b"), 400)
        XCTAssertEqual(refusal("POST / HTTP/1.1\r\nHost: a\r\nExpect: magic"), 417)
        XCTAssertEqual(refusal("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked"), 400)
    }

    func testResponseHeadForPublicClients() throws {
        let fields = [HeaderField(":status", "200"), HeaderField("content-type", "text/plain"), HeaderField("fastgw-reason", "x")]
        let chunked = try XCTUnwrap(PublicResponseHead.make(fields: fields, requestMethod: "GET", clientVersion: "HTTP/1.1", keepAlive: true))
        XCTAssertEqual(chunked.framing, .chunked)
        XCTAssertEqual(String(decoding: chunked.bytes, as: UTF8.self),
                       "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n")
        let old = try XCTUnwrap(PublicResponseHead.make(fields: fields, requestMethod: "GET", clientVersion: "HTTP/1.0", keepAlive: true))
        XCTAssertEqual(old.framing, .untilClose)
        XCTAssertFalse(old.keepAlive)
        let sized = try XCTUnwrap(PublicResponseHead.make(
            fields: [HeaderField(":status", "404"), HeaderField("content-length", "3")], requestMethod: "GET",
            clientVersion: "HTTP/1.0", keepAlive: true))
        XCTAssertEqual(sized.framing, .contentLength(3))
        XCTAssertTrue(String(decoding: sized.bytes, as: UTF8.self).contains("connection: keep-alive\r\n"))
        let head = try XCTUnwrap(PublicResponseHead.make(fields: [HeaderField(":status", "200")], requestMethod: "HEAD", clientVersion: "HTTP/1.1", keepAlive: false))
        XCTAssertEqual(head.framing, .none)
        XCTAssertNil(PublicResponseHead.make(fields: [], requestMethod: "GET", clientVersion: "HTTP/1.1", keepAlive: true))
    }

    func testUpstreamRequestAndResponse() throws {
        let fields = [
            HeaderField(":method", "POST"), HeaderField(":scheme", "http"), HeaderField(":authority", "a.test"),
            HeaderField(":path", "/up"), HeaderField("fastgw-service", "web"), HeaderField("fastgw-request-id", "r1"),
            HeaderField("content-type", "x"),
        ]
        let streamed = try UpstreamMessage.request(fields, endStream: false).get()
        XCTAssertEqual(streamed.framing, .chunked)
        XCTAssertEqual(String(decoding: streamed.head.serialized(), as: UTF8.self),
                       "POST /up HTTP/1.1\r\nhost: a.test\r\ncontent-type: x\r\ntransfer-encoding: chunked\r\nx-request-id: r1\r\n\r\n")
        let empty = try UpstreamMessage.request(fields, endStream: true).get()
        XCTAssertEqual(empty.framing, .none)
        XCTAssertEqual(empty.head["content-length"], "0")
        let sized = try UpstreamMessage.request(fields + [HeaderField("content-length", "9")], endStream: false).get()
        XCTAssertEqual(sized.framing, .contentLength(9))
        guard case .failure = UpstreamMessage.request(Array(fields.dropFirst()), endStream: true) else {
            return XCTFail("a request stream without :method is refused")
        }

        let response = HTTPHead(startLine: ["HTTP/1.1", "200", "OK"], fields: [
            (name: "Transfer-Encoding", value: "chunked"), (name: "Connection", value: "close"), (name: "X-App", value: "1"),
        ])
        let framing = try BodyFraming.ofResponse(response, status: 200, requestMethod: "GET").get()
        XCTAssertEqual(framing, .chunked)
        XCTAssertEqual(UpstreamMessage.responseFields(response, status: 200, framing: framing),
                       [HeaderField(":status", "200"), HeaderField("x-app", "1")])
        XCTAssertFalse(UpstreamMessage.isReusable(response, framing: framing))
        let plain = HTTPHead(startLine: ["HTTP/1.1", "204", "No Content"], fields: [])
        XCTAssertEqual(try BodyFraming.ofResponse(plain, status: 204, requestMethod: "GET").get(), BodyFraming.none)
        XCTAssertTrue(UpstreamMessage.isReusable(plain, framing: .none))
        let eof = HTTPHead(startLine: ["HTTP/1.0", "200", "OK"], fields: [])
        XCTAssertEqual(try BodyFraming.ofResponse(eof, status: 200, requestMethod: "GET").get(), .untilClose)
        let bad = HTTPHead(startLine: ["HTTP/1.1", "200", "OK"], fields: [(name: "Content-Length", value: "1, 2")])
        XCTAssertThrowsError(try BodyFraming.ofResponse(bad, status: 200, requestMethod: "GET").get())
    }

    func testBodyDecoderAcrossFramings() throws {
        var length = BodyDecoder(.contentLength(5))
        let first = try length.feed(Array("hel".utf8))
        XCTAssertEqual(first.events, [.data(0..<3)])
        let rest = try length.feed(Array("loGET".utf8))
        XCTAssertEqual(rest.events, [.data(0..<2), .end(trailers: [])])
        XCTAssertEqual(rest.consumed, 2)  // "GET" is the next request
        XCTAssertTrue(length.isComplete)

        var chunked = BodyDecoder(.chunked)
        let c = try chunked.feed(Array("3\r\nabc\r\n0\r\nX-A: 1\r\n\r\nNEXT".utf8))
        XCTAssertEqual(c.events, [.data(3..<6), .end(trailers: [.init(name: "X-A", value: "1")])])
        XCTAssertEqual(chunked.bodyBytes, 3)

        var untilClose = BodyDecoder(.untilClose)
        XCTAssertEqual(try untilClose.feed(Array("abc".utf8)).events, [.data(0..<3)])
        XCTAssertTrue(untilClose.endOfInput())
        var truncated = BodyDecoder(.contentLength(10))
        _ = try truncated.feed(Array("abc".utf8))
        XCTAssertFalse(truncated.endOfInput())
    }
}
