import NIOCore
import Protocol
import XCTest

@testable import Sidecar

/// The public HTTP/1.1 request side without sockets: bytes in, events out.
final class HTTP1RequestReaderTests: XCTestCase {
    private func reader(maxHeaderSize: Int = 1024, maxBodySize: Int? = nil) -> HTTP1RequestReader {
        HTTP1RequestReader(maxHeaderSize: maxHeaderSize, maxBodySize: maxBodySize)
    }

    private func feed(_ r: inout HTTP1RequestReader, _ text: String) {
        var b = ByteBuffer(string: text)
        r.append(&b)
    }

    /// Everything the reader hands out now, as short strings.
    private func drain(_ r: inout HTTP1RequestReader, streamOpen: Bool = true) -> [String] {
        var out: [String] = []
        while let e = r.next(streamOpen: streamOpen) {
            switch e {
            case .headStarted: out.append("started")
            case .head(let h): out.append("head \(h.startLine[1])")
            case .bodyData(let b): out.append("data \(String(buffer: b))")
            case .bodyEnd(let t): out.append("end \(t.map { "\($0.name)=\($0.value)" }.joined(separator: ","))")
            case .passThrough(let b): out.append("raw \(String(buffer: b))")
            case .refused(let status, let reason): out.append("refused \(status) \(reason)")
            }
        }
        return out
    }

    func testPipelinedRequestsWaitForNextRequest() {
        var r = reader()
        feed(&r, "\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(drain(&r), ["head /a"])
        r.expectBody(.none)
        XCTAssertTrue(r.requestRead)
        XCTAssertEqual(drain(&r), [], "the second request waits for the first response")
        XCTAssertFalse(r.holdsBackInput(streamOpen: true))
        r.nextRequest()
        XCTAssertEqual(drain(&r), ["head /b"])
    }

    func testHeadInPiecesStartsTheHeaderTimerOnce() {
        var r = reader()
        feed(&r, "GET / HT")
        XCTAssertEqual(drain(&r), ["started"])
        feed(&r, "TP/1.1\r\nHost: x\r")
        XCTAssertEqual(drain(&r), [])
        feed(&r, "\n\r\n")
        XCTAssertEqual(drain(&r), ["head /"])
    }

    func testContentLengthBodyIsHandedOnOnlyWhileTheStreamIsOpen() {
        var r = reader()
        feed(&r, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel")
        XCTAssertEqual(drain(&r), ["head /up"])
        r.expectBody(.contentLength(5))
        XCTAssertEqual(drain(&r, streamOpen: false), [])
        XCTAssertTrue(r.holdsBackInput(streamOpen: false))
        XCTAssertEqual(drain(&r), ["data hel"])
        feed(&r, "loGET")
        XCTAssertEqual(drain(&r), ["data lo", "end "])
        XCTAssertTrue(r.requestRead)
        XCTAssertEqual(r.bufferedBytes, 3, "the next request's first bytes stay")
    }

    func testChunkedBodyWithTrailers() {
        var r = reader()
        feed(&r, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        XCTAssertEqual(drain(&r), ["head /"])
        r.expectBody(.chunked)
        feed(&r, "3\r\nabc\r\n2\r")
        XCTAssertEqual(drain(&r), ["data abc"])
        feed(&r, "\nde\r\n0\r\nX-Sum: 5\r\n\r\n")
        XCTAssertEqual(drain(&r), ["data de", "end X-Sum=5"])
        XCTAssertTrue(r.requestRead)
    }

    func testLimitsAndMalformedInputStopTheReader() {
        var big = reader(maxHeaderSize: 64)
        feed(&big, "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + String(repeating: "a", count: 80))
        XCTAssertEqual(drain(&big), ["refused 431 request head is over the limit of 64 bytes"])
        feed(&big, "\r\n\r\n")
        XCTAssertEqual(drain(&big), [], "a stopped reader ignores input")

        var garbage = reader()
        feed(&garbage, "\u{1}\u{2}\r\n\r\n")
        XCTAssertEqual(drain(&garbage), ["refused 400 malformed request head"])

        var chunk = reader()
        feed(&chunk, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        XCTAssertEqual(drain(&chunk), ["head /"])
        chunk.expectBody(.chunked)
        XCTAssertEqual(drain(&chunk).first?.hasPrefix("refused 400 malformed chunked body"), true)

        var tooLarge = reader(maxBodySize: 4)
        feed(&tooLarge, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n")
        XCTAssertEqual(drain(&tooLarge), ["head /"])
        tooLarge.expectBody(.chunked)
        XCTAssertEqual(drain(&tooLarge), ["refused 413 request body is over the limit of 4 bytes"])
    }

    func testPipelinedInputBehindAResponseIsBounded() {
        var r = reader(maxHeaderSize: 32)
        feed(&r, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(drain(&r), ["head /"])
        r.expectBody(.none)
        feed(&r, String(repeating: "G", count: 40))
        XCTAssertTrue(r.holdsBackInput(streamOpen: true))
    }

    func testUpgradedConnectionPassesBytesThrough() {
        var r = reader()
        feed(&r, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nearly")
        XCTAssertEqual(drain(&r), ["head /ws"])
        r.expectBody(.none)
        r.passThrough()
        XCTAssertEqual(drain(&r), ["raw early"])
        feed(&r, "GET / HTTP/1.1\r\n\r\n")
        XCTAssertEqual(drain(&r), ["raw GET / HTTP/1.1\r\n\r\n"], "no heads once upgraded")
    }
}
