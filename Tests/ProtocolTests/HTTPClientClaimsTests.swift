import Protocol
import XCTest

/// What a public client says about itself and its route never reaches the upstream as the
/// gateway's word (issue #14).
final class HTTPClientClaimsTests: XCTestCase {
    private func fields(_ extra: String) throws -> [HeaderField] {
        let head = try XCTUnwrap(HTTPHeadParser.parse(bytes: Array("GET /a HTTP/1.1\r\nHost: app.test\r\n\(extra)\r\n".utf8)))
        return try PublicRequest.parse(head).get().tunnelHeaders(scheme: "https", hop: .untrusted("192.0.2.7:4711"), service: "web", requestID: "gw1")
    }

    func testForwardingFieldsFromTheClientAreReplacedOrDropped() throws {
        let f = try fields("""
            Forwarded: for=10.0.0.1;proto=https\r
            X-Real-IP: 10.0.0.2\r
            X-Forwarded-For: 10.0.0.3\r
            x-forwarded-for: 10.0.0.4\r
            X-Forwarded-Proto: http\r
            X-Forwarded-Host: evil.test\r
            X-Forwarded-Port: 1\r
            X-Forwarded-Prefix: /admin\r
            X-Forwarded-Anything: 1\r
            X-Client-Request-Id: forged\r
            X-Keep: 1\r

            """)
        let names = f.map(\.name)
        XCTAssertEqual(f.filter { $0.name == "forwarded" }, [HeaderField("forwarded", "for=\"192.0.2.7:4711\";proto=https;host=app.test")])
        for gone in ["x-real-ip", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-anything", "x-request-id"] {
            XCTAssertFalse(names.contains(gone), gone)
        }
        XCTAssertEqual(f.filter { $0.name.hasPrefix("x-forwarded-") }, [
            HeaderField("x-forwarded-for", "192.0.2.7"), HeaderField("x-forwarded-proto", "https"),
            HeaderField("x-forwarded-host", "app.test"),
        ])
        XCTAssertNil(f["x-client-request-id"], "only X-Request-Id is carried over")
        XCTAssertEqual(f["x-keep"], "1")
        XCTAssertEqual(f["fastgw-request-id"], "gw1")
    }

    func testTheClientsRequestIdTravelsApartBoundedAndSanitised() throws {
        XCTAssertEqual(try fields("X-Request-Id: 3f2a-UUID_1.x~:+/=@\r\n")["x-client-request-id"], "3f2a-UUID_1.x~:+/=@")
        XCTAssertEqual(try fields("X-Request-Id: a b\"c\\d;é\r\n")["x-client-request-id"], "a_b_c_d___")
        XCTAssertEqual(try fields("X-Request-Id: \(String(repeating: "x", count: 500))\r\n")["x-client-request-id"]?.count,
                       ForwardedFields.clientRequestIDLimit)
        XCTAssertNil(try fields("X-Request-Id:\r\n")["x-client-request-id"])
        XCTAssertEqual(ForwardedFields.clientRequestID("a\u{0}b"), "a_b")
    }

    func testTheAgentWritesTheGatewaysRequestIdOnly() throws {
        let stream = [
            HeaderField(":method", "GET"), HeaderField(":scheme", "http"), HeaderField(":authority", "a.test"),
            HeaderField(":path", "/"), HeaderField("x-request-id", "client"), HeaderField("fastgw-request-id", "gw1"),
        ]
        let upstream = try UpstreamMessage.request(stream, endStream: true).get()
        XCTAssertEqual(upstream.head.values("X-Request-Id"), ["gw1"])
        XCTAssertEqual(UpstreamMessage.h2cRequest(stream).filter { $0.name == "x-request-id" }, [HeaderField("x-request-id", "gw1")])
    }

    func testPathPrefixesAreBoundariesInTheNormalForm() {
        XCTAssertEqual(PathPrefix.normalize("/api/"), .success("/api"))
        XCTAssertEqual(PathPrefix.normalize("/%7Euser"), .success("/~user"))
        XCTAssertEqual(PathPrefix.normalize("/a/./b/"), .success("/a/b"))
        guard case .failure(let r) = PathPrefix.normalize("/a%2Fb") else { return XCTFail("%2F accepted in a prefix") }
        XCTAssertEqual(r.reason, "path_prefix \"/a%2Fb\" is refused as a request path would be: encoded / (%2F) in the request path")
        XCTAssertTrue(PathPrefix.matches("/api", "/api"))
        XCTAssertTrue(PathPrefix.matches("/api", "/api/"))
        XCTAssertTrue(PathPrefix.matches("/api", "/api?x"))
        XCTAssertFalse(PathPrefix.matches("/api", "/apix"))
        XCTAssertFalse(PathPrefix.matches("/api", "/ap"))
        XCTAssertTrue(PathPrefix.matches("/", "//x"))
    }
}
