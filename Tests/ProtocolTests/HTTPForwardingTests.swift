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
        let fields = r.tunnelHeaders(scheme: "http", hop: .untrusted("192.0.2.7:4711"), service: "web", requestID: "abc")
        XCTAssertEqual(Array(fields.prefix(4)), [
            HeaderField(":method", "GET"), HeaderField(":scheme", "http"),
            HeaderField(":authority", "App.Test"), HeaderField(":path", "/a?b=1"),
        ])
        let names = fields.map(\.name)
        for gone in ["connection", "x-private", "keep-alive", "host"] { XCTAssertFalse(names.contains(gone), gone) }
        XCTAssertEqual(fields["te"], "trailers", "the one TE HTTP/2 allows (gRPC needs it)")
        XCTAssertEqual(fields.filter { $0.name.hasPrefix("fastgw-") }, [HeaderField("fastgw-service", "web"), HeaderField("fastgw-request-id", "abc")])
        XCTAssertEqual(fields["x-forwarded-for"], "192.0.2.7", "a public client's X-Forwarded-For is not trusted")
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

    func testUpgradesBecomeExtendedConnectAndBackAgain() throws {
        let r = try request("""
            GET /chat HTTP/1.1\r
            Host: app.test\r
            Connection: keep-alive, Upgrade\r
            Upgrade: WebSocket\r
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
            Sec-WebSocket-Version: 13
            """)
        XCTAssertEqual(r.upgrade, "websocket")
        let fields = r.tunnelHeaders(scheme: "https", hop: .untrusted("192.0.2.7:4711"), service: "ws", requestID: "abc")
        XCTAssertEqual(fields[":method"], "CONNECT")
        XCTAssertEqual(fields[":protocol"], "websocket")
        XCTAssertEqual(fields["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==")
        XCTAssertNil(fields["upgrade"])
        // Not carried: h2c, a POST, a body, Upgrade without Connection naming it.
        XCTAssertNil(try request("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c").upgrade)
        XCTAssertNil(try request("POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket").upgrade)
        XCTAssertNil(try request("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: Upgrade\r\nUpgrade: websocket").upgrade)
        XCTAssertNil(try request("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket").upgrade)

        // The agent writes the HTTP/1.1 upgrade request...
        let upstream = try UpstreamMessage.request(fields, endStream: false).get()
        XCTAssertEqual(upstream.upgrade, "websocket")
        XCTAssertEqual(upstream.framing, .none)
        let text = String(decoding: upstream.head.serialized(), as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("GET /chat HTTP/1.1\r\nhost: app.test\r\nconnection: upgrade\r\nupgrade: websocket\r\n"), text)
        XCTAssertThrowsError(try UpstreamMessage.request([HeaderField(":method", "CONNECT"), HeaderField(":path", "/"),
                                                          HeaderField(":authority", "a")], endStream: false).get())
        // ...and the upstream's 101 comes back as :status 200, then as 101 to the client.
        let accepted = try XCTUnwrap(HTTPHeadParser.parse(bytes: Array("""
            HTTP/1.1 101 Switching Protocols\r
            Upgrade: websocket\r
            Connection: Upgrade\r
            Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n
            """.utf8)))
        let back = UpstreamMessage.upgradeFields(accepted)
        XCTAssertEqual(back, [HeaderField(":status", "200"), HeaderField("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")])
        let head = PublicResponseHead.upgraded(fields: back, protocol: "websocket")
        XCTAssertEqual(String(decoding: head.bytes, as: UTF8.self),
                       "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
        XCTAssertEqual(head.framing, .untilClose)
    }

    func testHTTP2RequestsFromPublicClients() throws {
        let fields = [HeaderField(":method", "POST"), HeaderField(":scheme", "https"), HeaderField(":authority", "app.test:8443"),
                      HeaderField(":path", "/up"), HeaderField("cookie", "a=1"), HeaderField("cookie", "b=2"),
                      HeaderField("content-length", "5")]
        let r = try PublicRequest.parse(h2: fields, endStream: false).get()
        XCTAssertEqual(r.framing, .contentLength(5))
        XCTAssertEqual(r.version, "HTTP/2")
        XCTAssertEqual(r.authority, "app.test:8443")
        XCTAssertEqual(r.tunnelHeaders(scheme: "https", hop: .untrusted("192.0.2.7:4711"), service: "s", requestID: "i")["cookie"], "a=1; b=2")
        XCTAssertEqual(try PublicRequest.parse(h2: Array(fields.prefix(4)), endStream: false).get().framing, .chunked)
        XCTAssertEqual(try PublicRequest.parse(h2: Array(fields.prefix(4)), endStream: true).get().framing, .none)
        func status(_ f: [HeaderField]) -> Int? {
            if case .failure(let r) = PublicRequest.parse(h2: f, endStream: true) { return r.status }
            return nil
        }
        XCTAssertEqual(status([HeaderField(":method", "GET"), HeaderField(":path", "/"), HeaderField(":authority", "a"),
                               HeaderField("host", "b")]), 400)
        XCTAssertEqual(status([HeaderField(":method", "CONNECT"), HeaderField(":authority", "a:1")]), 405)
        XCTAssertNil(status([HeaderField(":method", "GET"), HeaderField(":path", "/"), HeaderField("host", "a")]))
        XCTAssertEqual(PublicResponseH2.fields([HeaderField(":status", "200"), HeaderField("connection", "x"),
                                                HeaderField("fastgw-x", "1"), HeaderField("a", "b")]),
                       [HeaderField(":status", "200"), HeaderField("a", "b")])
    }

    func testH2CUpstreamFieldsPassThroughFilteredOfTunnelAndConnectionFields() {
        let request = UpstreamMessage.h2cRequest([
            HeaderField(":method", "POST"), HeaderField(":scheme", "https"), HeaderField(":authority", "g.test"),
            HeaderField(":path", "/svc/M"), HeaderField("te", "trailers"), HeaderField("content-type", "application/grpc"),
            HeaderField("fastgw-service", "g"), HeaderField("fastgw-request-id", "r1"), HeaderField("connection", "x"),
        ])
        XCTAssertEqual(request, [
            HeaderField(":method", "POST"), HeaderField(":scheme", "http"), HeaderField(":authority", "g.test"),
            HeaderField(":path", "/svc/M"), HeaderField("te", "trailers"), HeaderField("content-type", "application/grpc"),
            HeaderField("x-request-id", "r1"),
        ])
        XCTAssertEqual(UpstreamMessage.h2cResponse([HeaderField(":status", "200"), HeaderField("grpc-status", "3"),
                                                    HeaderField("fastgw-reason", "x"), HeaderField("keep-alive", "1")]),
                       [HeaderField(":status", "200"), HeaderField("grpc-status", "3")])
        // Trailers, whichever way and protocol: one rule.
        XCTAssertEqual(HopByHop.forwardedTrailers([HeaderField(":status", "200"), HeaderField("grpc-status", "0"),
                                                   HeaderField("content-length", "9"), HeaderField("host", "h"),
                                                   HeaderField("te", "trailers"), HeaderField("fastgw-x", "1")]),
                       [HeaderField("grpc-status", "0")])
    }
}
