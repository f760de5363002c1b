import Protocol
import XCTest

/// What the agent tells the gateway about an upstream's answer: upgrades only after a 101,
/// and a Content-Length that matches the DATA that follows (issue #14).
final class HTTPUpstreamAnswerTests: XCTestCase {
    private func head(_ status: Int, _ fields: [(String, String)]) -> HTTPHead {
        HTTPHead(startLine: ["HTTP/1.1", String(status), "X"], fields: fields.map { (name: $0.0, value: $0.1) })
    }

    private func relayed(_ status: Int, _ fields: [(String, String)], method: String = "GET") throws -> [HeaderField] {
        let h = head(status, fields)
        let framing = try BodyFraming.ofResponse(h, status: status, requestMethod: method).get()
        return UpstreamMessage.responseFields(h, status: status, framing: framing)
    }

    func testOnlyA101SwitchesProtocols() {
        XCTAssertEqual(UpstreamMessage.upgradeAnswer(status: 101), .switched)
        XCTAssertEqual(UpstreamMessage.upgradeAnswer(status: 200),
                       .failed(reason: "the upstream answered 200 to an upgrade request instead of 101 Switching Protocols"))
        XCTAssertEqual(UpstreamMessage.upgradeAnswer(status: 204),
                       .failed(reason: "the upstream answered 204 to an upgrade request instead of 101 Switching Protocols"))
        for status in [301, 400, 426, 500] { XCTAssertEqual(UpstreamMessage.upgradeAnswer(status: status), .relayed) }
    }

    func testContentLengthTellsTheTruthAboutTheData() throws {
        // A body framed by the length: exactly one value, as read.
        XCTAssertEqual(try relayed(200, [("Content-Length", "5, 5")])["content-length"], "5")
        XCTAssertEqual(try relayed(200, [("Content-Length", "5"), ("content-length", "5")]).filter { $0.name == "content-length" },
                       [HeaderField("content-length", "5")])
        // A body framed otherwise: the upstream's length would be a lie.
        XCTAssertNil(try relayed(200, [("Transfer-Encoding", "gzip"), ("Content-Length", "5")])["content-length"])
        XCTAssertNil(try relayed(200, [("Transfer-Encoding", "chunked"), ("Content-Length", "5")])["content-length"])
        // No body: the length of what a GET would get, when it is one number.
        XCTAssertEqual(try relayed(200, [("Content-Length", "12")], method: "HEAD")["content-length"], "12")
        XCTAssertNil(try relayed(200, [("Content-Length", "12, 13")], method: "HEAD")["content-length"])
        XCTAssertEqual(try relayed(304, [("Content-Length", "7")])["content-length"], "7")
        XCTAssertEqual(try relayed(200, [("Content-Length", "0")])["content-length"], "0")
    }
}
