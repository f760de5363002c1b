import Protocol
import XCTest

/// The path a request is routed on is the path its upstream receives (issue #14).
final class HTTPPathNormalizerTests: XCTestCase {
    private func normal(_ target: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        switch PathNormalizer.normalize(target) {
        case .success(let p): return p
        case .failure(let r):
            XCTFail("\(target) refused: \(r.reason)", file: file, line: line)
            return nil
        }
    }

    private func refusal(_ target: String) -> String? {
        if case .failure(let r) = PathNormalizer.normalize(target) { return r.reason }
        return nil
    }

    func testTheAttackVariantsNeverStayUnderTheirPrefix() {
        // RFC 3986: in /api//../admin the .. removes the empty segment, which stays under /api.
        let routed = [
            ("/api/../admin", "/admin"), ("/api/%2e%2e/admin", "/admin"), ("/api/%2E%2e/admin", "/admin"),
            ("/api/.%2e/admin", "/admin"), ("/api//../admin", "/api/admin"), ("/api/x/../../admin", "/admin"),
            ("/api/..x;/admin", "/api/..x;/admin"),
        ]
        for (target, want) in routed { XCTAssertEqual(normal(target), want, target) }
        let refused = [
            ("/api/..%2fadmin", "encoded / (%2F) in the request path"), ("/api/..%2Fadmin", "encoded / (%2F) in the request path"),
            ("/api/..%5cadmin", "encoded \\ (%5C) in the request path"), ("/api/..\\admin", "\\ in the request path"),
            ("/api/..;/admin", "a dot segment with parameters in the request path"),
            ("/api/.;x/admin", "a dot segment with parameters in the request path"),
        ]
        for (target, want) in refused { XCTAssertEqual(refusal(target), want, target) }
    }

    func testDotSegmentsAboveTheRootAreRefused() {
        for target in ["/..", "/../x", "/a/../../x", "/%2e%2e/x", "/./../x"] {
            XCTAssertEqual(refusal(target), "the request path climbs above the root", target)
        }
        XCTAssertEqual(normal("/a/.."), "/")
        XCTAssertEqual(normal("//.."), "/")
    }

    func testSingleDotsAndTrailingSlashes() {
        let cases = [
            ("/", "/"), ("/.", "/"), ("/./", "/"), ("/a/./b", "/a/b"), ("/a/b/.", "/a/b/"), ("/a/b/..", "/a/"),
            ("/a/b/", "/a/b/"), ("/a//b", "/a//b"), ("//", "//"), ("/a/...", "/a/..."),
        ]
        // Empty segments stay (RFC 3986 keeps them); three dots are a name.
        for (target, want) in cases { XCTAssertEqual(normal(target), want, target) }
    }

    func testPercentEncodingIsDecodedOnlyForUnreservedAndUpperCasedOtherwise() {
        XCTAssertEqual(normal("/%7Euser/%41%62%2D%5F%30"), "/~user/Ab-_0")
        XCTAssertEqual(normal("/caf%c3%a9"), "/caf%C3%A9")
        XCTAssertEqual(normal("/a%20b%3f%23"), "/a%20b%3F%23", "reserved and other escapes stay escaped")
        XCTAssertEqual(normal("/a%252e%252e/b"), "/a%252e%252e/b", "double encoding stays literal")
        XCTAssertEqual(normal("/%252e%252e/x"), "/%252e%252e/x", "…and is no dot segment")
        XCTAssertEqual(normal("/café"), "/caf%C3%A9", "raw non-ASCII is percent-encoded")
        for bad in ["/%", "/%4", "/%zz", "/a%g1"] {
            XCTAssertEqual(refusal(bad), "malformed percent-encoding in the request path", bad)
        }
        XCTAssertEqual(refusal("/a%00b"), "encoded control byte %00 in the request path")
        XCTAssertEqual(refusal("/a%0Ab"), "encoded control byte %0A in the request path")
        XCTAssertEqual(refusal("/a%7fb"), "encoded control byte %7F in the request path")
    }

    func testControlBytesSpacesAndFragmentsAreRefused() {
        let cases = [
            ("/a\tb", "control byte 0x09 in the request path"), ("/a\u{0}b", "control byte 0x00 in the request path"),
            ("/a b", "a space in the request path"), ("/a\u{7f}", "control byte 0x7F in the request path"),
            ("/a?x=\t", "control byte 0x09 in the request query"), ("/a#frag", "a fragment (#) in the request target"),
            ("/a?b#frag", "a fragment (#) in the request target"), ("a/b", "the request path does not start with /"),
            ("", "the request path does not start with /"), ("*", "the request path does not start with /"),
        ]
        for (target, want) in cases { XCTAssertEqual(refusal(target), want, target) }
    }

    func testTheQueryIsPassedOnUnchanged() {
        XCTAssertEqual(normal("/api/../x?a=%2e%2e/../b&c=%2F"), "/x?a=%2e%2e/../b&c=%2F")
        XCTAssertEqual(normal("/a?"), "/a?")
        XCTAssertEqual(normal("/a/./?q"), "/a/?q")
        XCTAssertEqual(normal("/?é"), "/?é", "the query is not re-encoded")
    }

    func testRequestsCarryTheNormalPathBothProtocols() throws {
        func h1(_ target: String) -> Result<PublicRequest, PublicRequest.Refusal> {
            let head = HTTPHead(startLine: ["GET", target, "HTTP/1.1"], fields: [(name: "Host", value: "a.test")])
            return PublicRequest.parse(head)
        }
        func h2(_ path: String, method: String = "GET") -> Result<PublicRequest, PublicRequest.Refusal> {
            PublicRequest.parse(h2: [HeaderField(":method", method), HeaderField(":path", path), HeaderField(":authority", "a.test")],
                                endStream: true)
        }
        XCTAssertEqual(try h1("/api/%2e%2e/admin?x=1").get().path, "/admin?x=1")
        XCTAssertEqual(try h2("/api/x/../../admin").get().path, "/admin")
        let absolute = try h1("http://b.test/api/../admin").get()
        XCTAssertEqual([absolute.authority, absolute.path], ["b.test", "/admin"])
        XCTAssertEqual(try h1("http://b.test?q").get().path, "/?q")
        let fields = try h1("/api/./v1/%7Ex").get().tunnelHeaders(scheme: "http", hop: .untrusted("192.0.2.7:4711"), service: "s", requestID: "r")
        XCTAssertEqual(fields[":path"], "/api/v1/~x", "the upstream receives what was matched")
        for bad in ["/api/..%2fadmin", "/a\tb", "/a\u{0}b", "/../x", "x"] {
            guard case .failure(let r) = h1(bad) else { return XCTFail("\(bad) accepted over HTTP/1.1") }
            XCTAssertEqual(r.status, 400, bad)
            guard case .failure(let r2) = h2(bad) else { return XCTFail("\(bad) accepted over HTTP/2") }
            XCTAssertEqual(r2.status, 400, bad)
        }
    }

    func testAsteriskOnlyForOptions() throws {
        let head = HTTPHead(startLine: ["OPTIONS", "*", "HTTP/1.1"], fields: [(name: "Host", value: "a.test")])
        XCTAssertEqual(try PublicRequest.parse(head).get().path, "*")
        let get = HTTPHead(startLine: ["GET", "*", "HTTP/1.1"], fields: [(name: "Host", value: "a.test")])
        guard case .failure(let r) = PublicRequest.parse(get) else { return XCTFail("GET * accepted") }
        XCTAssertEqual(r.status, 400)
        let h2 = PublicRequest.parse(h2: [HeaderField(":method", "OPTIONS"), HeaderField(":path", "*"), HeaderField(":authority", "a")],
                                     endStream: true)
        XCTAssertEqual(try h2.get().path, "*")
    }

    /// Pieces attackers combine, put together at random (seeded, so failures repeat): every
    /// accepted path is a fixed point, so an upstream that normalises again by the same rules
    /// reads the path the route table matched, and has no dot segment left to resolve.
    func testNormalFormIsAFixedPointWithoutDotSegments() {
        let pieces = ["/", ".", "..", "%2e", "%2E", "%2f", "%5c", "a", "api", "%41", "%7e", ";", "%25", "%c3%a9", "?", "x=1", "%00"]
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(seed >> 33)
        }
        var accepted = 0
        for _ in 0..<20_000 {
            let target = "/" + (0..<(next() % 9)).map { _ in pieces[next() % pieces.count] }.joined()
            guard case .success(let normal) = PathNormalizer.normalize(target) else { continue }
            accepted += 1
            XCTAssertEqual(try PathNormalizer.normalize(normal).get(), normal, target)
            let path = normal.prefix { $0 != "?" }
            let segments = path.split(separator: "/", omittingEmptySubsequences: false)
            XCTAssertFalse(segments.contains { $0 == "." || $0 == ".." }, "\(target) → \(normal)")
        }
        XCTAssertGreaterThan(accepted, 1000)
    }
}
