import Protocol
import XCTest

final class BackoffAndFramingTests: XCTestCase {
    func testBackoffDoublesToTheCapWithFullJitter() {
        var b = Backoff()
        XCTAssertEqual(b.next(unit: 0.999_999), .milliseconds(500) * 0.999_999)
        XCTAssertEqual(b.next(unit: 0.5), .milliseconds(500))  // ceiling 1 s
        XCTAssertEqual(b.next(unit: 0), .zero, "full jitter may retry at once")
        for _ in 0..<10 { _ = b.next(unit: 0.5) }
        XCTAssertEqual(b.next(unit: 1), .seconds(30), "capped at 30 s")
        b.connectionEnded(after: .seconds(5))
        XCTAssertEqual(b.next(unit: 1), .seconds(30), "a short-lived connection does not reset")
        b.connectionEnded(after: .seconds(61))
        XCTAssertEqual(b.next(unit: 1), .milliseconds(500), "a connection up for a minute resets")
        XCTAssertGreaterThanOrEqual(b.afterAuthFailure(unit: 0), .seconds(15))
    }

    func testLineFramerSplitsAcrossChunksAndBoundsLines() throws {
        var f = LineFramer(limit: 16)
        XCTAssertEqual(try f.feed(Array("{\"a\"".utf8)), [])
        XCTAssertEqual(try f.feed(Array(":1}\r\n{}\n\n".utf8)), [Array("{\"a\":1}".utf8), Array("{}".utf8)])
        XCTAssertThrowsError(try f.feed(Array(repeating: UInt8(ascii: "x"), count: 17)))
    }

    func testControlMessagesRoundTrip() throws {
        let messages: [ControlMessage] = [
            .register([ServiceDeclaration(name: "ssh", type: "tcp", remotePort: 2222)]),
            .registered(accepted: ["ssh"], rejected: [.init(name: "db", reason: "no")]),
            .draining,
        ]
        for m in messages {
            let bytes = m.encoded()
            XCTAssertEqual(bytes.last, 10)
            XCTAssertEqual(try ControlMessage.decode(bytes.dropLast()), m)
        }
        XCTAssertEqual(String(decoding: ControlMessage.register([ServiceDeclaration(name: "s", type: "tcp", remotePort: 1)]).encoded(), as: UTF8.self),
                       "{\"services\":[{\"name\":\"s\",\"remote_port\":1,\"type\":\"tcp\"}],\"type\":\"register\"}\n")
        XCTAssertThrowsError(try ControlMessage.decode(Array("{\"type\":\"launch\"}".utf8)))
        XCTAssertThrowsError(try ControlMessage.decode(Array("not json".utf8)))
    }
}
