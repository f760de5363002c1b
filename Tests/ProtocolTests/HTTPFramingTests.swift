import Protocol
import XCTest

final class HTTPFramingTests: XCTestCase {
    private func head(_ fields: [(String, String)]) -> HTTPHead {
        HTTPHead(startLine: ["POST", "/", "HTTP/1.1"], fields: fields.map { (name: $0.0, value: $0.1) })
    }

    private func framing(_ fields: [(String, String)], version: String = "HTTP/1.1") -> Result<RequestFraming, RequestFraming.Refusal> {
        RequestFraming.of(head(fields), version: version)
    }

    func testOrdinaryFramings() {
        XCTAssertEqual(framing([]), .success(.none))
        XCTAssertEqual(framing([("Content-Length", "0")]), .success(.none))
        XCTAssertEqual(framing([("content-length", "1048576")]), .success(.contentLength(1_048_576)))
        XCTAssertEqual(framing([("Transfer-Encoding", "Chunked")]), .success(.chunked))
    }

    /// RFC 9110 §8.6 would allow `42, 42` as 42; the gateway refuses it (as nginx does) so the
    /// agent never has to forward a list its own HTTP/2 peer rejects.
    func testTheSameLengthTwiceIsRefusedToo() {
        for fields in [[("Content-Length", "42, 42")], [("Content-Length", "42"), ("Content-Length", "42")], [("Content-Length", "42,")]] {
            guard case .failure(let r) = framing(fields) else { return XCTFail("\(fields) accepted") }
            XCTAssertEqual([String(r.status), r.reason], ["400", "more than one Content-Length value"])
        }
    }

    func testSmugglingShapesAreRefused() {
        func status(_ f: [(String, String)], version: String = "HTTP/1.1") -> Int? {
            if case .failure(let r) = framing(f, version: version) { return r.status }
            return nil
        }
        XCTAssertEqual(status([("Content-Length", "5"), ("Transfer-Encoding", "chunked")]), 400)
        XCTAssertEqual(status([("Content-Length", "5"), ("Content-Length", "6")]), 400)
        XCTAssertEqual(status([("Content-Length", "5, 6")]), 400)
        XCTAssertEqual(status([("Content-Length", "-1")]), 400)
        XCTAssertEqual(status([("Content-Length", "+5")]), 400)
        XCTAssertEqual(status([("Content-Length", "0x10")]), 400)
        XCTAssertEqual(status([("Content-Length", "1 0")]), 400)
        XCTAssertEqual(status([("Content-Length", "")]), 400)
        XCTAssertEqual(status([("Content-Length", "99999999999999999999")]), 400)
        XCTAssertEqual(status([("Transfer-Encoding", "chunked, identity")]), 400)
        XCTAssertEqual(status([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")]), 501)
        XCTAssertEqual(status([("Transfer-Encoding", "gzip, chunked")]), 501)
        XCTAssertEqual(status([("Transfer-Encoding", "")]), 400)
        XCTAssertEqual(status([("Transfer-Encoding", "chunked")], version: "HTTP/1.0"), 400)
    }

    private func decode(_ pieces: [String]) throws -> (body: String, trailers: [ChunkedDecoder.HeaderLine]?, rest: String) {
        var decoder = ChunkedDecoder()
        var body: [UInt8] = []
        var trailers: [ChunkedDecoder.HeaderLine]?
        var rest = ""
        for piece in pieces {
            let bytes = Array(piece.utf8)
            let (events, consumed) = try decoder.feed(bytes)
            for e in events {
                switch e {
                case .data(let r): body += bytes[r]
                case .end(let t): trailers = t
                }
            }
            rest += String(decoding: bytes[consumed...], as: UTF8.self)
        }
        return (String(decoding: body, as: UTF8.self), trailers, rest)
    }

    func testChunkedBodiesSplitAnywhere() throws {
        let message = "5;name=value\r\nhello\r\nB\r\n, chunked!!\r\n0\r\nX-Checksum: abc\r\nX-Other:1\r\n\r\nGET /next"
        // Every split point gives the same body, trailers and leftover.
        for cut in 0...message.utf8.count {
            let bytes = Array(message.utf8)
            let parts = [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]
            let (body, trailers, rest) = try decode(parts)
            XCTAssertEqual(body, "hello, chunked!!", "cut at \(cut)")
            XCTAssertEqual(trailers, [.init(name: "X-Checksum", value: "abc"), .init(name: "X-Other", value: "1")])
            XCTAssertEqual(rest, "GET /next")
        }
        XCTAssertEqual(try decode(["0\r\n\r\n"]).trailers, [])
    }

    func testMalformedChunkedIsRefused() {
        for bad in ["zz\r\nhi\r\n0\r\n\r\n", "\r\n", "5\nhello\r\n", "2\r\nhiX\r\n", "1234567890abcdef0\r\n",
                    "0\r\nbad trailer\r\n\r\n", "0\r\n\n", "-1\r\n"] {
            XCTAssertThrowsError(try decode([bad]), bad.debugDescription)
        }
        XCTAssertThrowsError(try decode([String(repeating: "1", count: 5) + ";" + String(repeating: "x", count: 5000)]))
    }
}
