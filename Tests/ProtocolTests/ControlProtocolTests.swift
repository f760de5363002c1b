import Protocol
import XCTest

final class ControlProtocolTests: XCTestCase {
    private func parse(_ line: String, _ role: ControlRole = .gateway) -> Result<ControlRequest?, ControlError> {
        ControlRequest.parse(Array(line.utf8), role: role)
    }

    private func request(_ line: String, _ role: ControlRole = .gateway) throws -> ControlRequest {
        let r = try parse(line, role).get()
        return try XCTUnwrap(r)
    }

    private func error(_ line: String, _ role: ControlRole = .gateway) -> ControlError? {
        if case .failure(let e) = parse(line, role) { return e }
        return nil
    }

    func testCommandsAndFormats() throws {
        XCTAssertEqual(try request("ping"), ControlRequest(command: .ping))
        XCTAssertEqual(try request("PING\r"), ControlRequest(command: .ping))
        XCTAssertEqual(try request("stats prometheus"), ControlRequest(command: .stats, format: .prometheus))
        XCTAssertEqual(try request("  stats\tjson "), ControlRequest(command: .stats, format: .json))
        XCTAssertEqual(try request("drain"), ControlRequest(command: .drain(seconds: nil)))
        XCTAssertEqual(try request("drain 30 json"), ControlRequest(command: .drain(seconds: 30), format: .json))
        XCTAssertEqual(try request("log-level DEBUG"), ControlRequest(command: .logLevel("debug")))
        XCTAssertEqual(try request("agents json"), ControlRequest(command: .agents, format: .json))
        XCTAssertEqual(try request("connections", .agent), ControlRequest(command: .connections))
        XCTAssertNil(try parse("   ").get())
    }

    func testBadRequests() {
        XCTAssertEqual(error("frobnicate")?.code, 404)
        XCTAssertEqual(error("services")?.message, "command \"services\" exists only on the agent")
        XCTAssertEqual(error("agents", .agent)?.message, "command \"agents\" exists only on the gateway")
        XCTAssertEqual(error("ping now")?.code, 400)
        XCTAssertEqual(error("agents prometheus")?.code, 400, "prometheus is for stats only")
        XCTAssertEqual(error("drain 0")?.code, 400)
        XCTAssertEqual(error("drain soon")?.code, 400)
        XCTAssertEqual(error("drain 1 2")?.code, 400)
        XCTAssertEqual(error("log-level loud")?.code, 400)
        XCTAssertEqual(error("log-level")?.code, 400)
        XCTAssertEqual(error("ping\u{1}")?.code, 400)
        XCTAssertEqual(ControlRequest.parse([0xff, 0xfe], role: .gateway).failureCode, 400)
        XCTAssertEqual(error(String(repeating: "a", count: 4097))?.code, 400)
        XCTAssertEqual(error(String(repeating: "a", count: 4096))?.code, 404, "4096 bytes is still a line")
    }

    func testReplyEncodingAndParsing() throws {
        XCTAssertEqual(ControlReply.ok("pong\n").encoded(), Array("OK 5\npong\n".utf8))
        XCTAssertEqual(ControlReply.ok("").encoded(), Array("OK 0\n".utf8))
        XCTAssertEqual(ControlReply.error(.invalidConfig("a.toml:3: bad\nsecond")).encoded(),
                       Array("ERR 422 a.toml:3: bad second\n".utf8))
        // Byte counts, not characters.
        XCTAssertEqual(ControlReply.ok("é").encoded(), Array("OK 2\né".utf8))

        var parser = ControlReplyParser()
        let stream = Array("OK 6\nline\n\nERR 409 already draining\nOK 0\n".utf8)
        var replies: [ControlReply] = []
        for b in stream {  // one byte at a time
            if let r = try parser.feed([b]) { replies.append(r) }
        }
        XCTAssertEqual(replies, [.ok("line\n\n"), .error(ControlError(code: 409, message: "already draining")), .ok("")])
        var bad = ControlReplyParser()
        XCTAssertThrowsError(try bad.feed(Array("HELLO\n".utf8)))
    }

    func testStatsRendering() {
        var r = StatsReport(role: .gateway)
        r.add("uptime_seconds", .gauge, "Seconds up.", 12.5)
        r.add("streams_total", .counter, "Streams.", 7)
        r.add("service_bytes_in_total", .counter, "Bytes in.", by: "service", ["web": 100, "a\"b": 1])
        r.add("connect_failures_total", .counter, "Failures.", by: "reason", [:])
        XCTAssertEqual(r.value("service_bytes_in_total", "web"), 100)
        XCTAssertEqual(r.json().serialized(),
                       #"{"connect_failures_total":{},"role":"gateway","service_bytes_in_total":{"a\"b":1,"web":100},"streams_total":7,"uptime_seconds":12.5}"#)
        XCTAssertEqual(r.prometheus(), """
            # HELP fastgw_uptime_seconds Seconds up.
            # TYPE fastgw_uptime_seconds gauge
            fastgw_uptime_seconds 12.5
            # HELP fastgw_streams_total Streams.
            # TYPE fastgw_streams_total counter
            fastgw_streams_total 7
            # HELP fastgw_service_bytes_in_total Bytes in.
            # TYPE fastgw_service_bytes_in_total counter
            fastgw_service_bytes_in_total{service="a\\"b"} 1
            fastgw_service_bytes_in_total{service="web"} 100
            # HELP fastgw_connect_failures_total Failures.
            # TYPE fastgw_connect_failures_total counter

            """)
        XCTAssertEqual(r.text(), """
            METRIC                       VALUE
            uptime_seconds               12.5
            streams_total                7
            service_bytes_in_total[a"b]  1
            service_bytes_in_total[web]  100

            """)
    }

    func testTableAndDurations() {
        var t = TextTable(["A", "LONGER"])
        t.add(["xyz", "1"])
        t.add(["", ""])
        XCTAssertEqual(t.render(), "A    LONGER\nxyz  1\n\n")
        XCTAssertEqual(DurationText.format(milliseconds: 850), "850ms")
        XCTAssertEqual(DurationText.format(milliseconds: 42_000), "42s")
        XCTAssertEqual(DurationText.format(milliseconds: 307_000), "5m07s")
        XCTAssertEqual(DurationText.format(milliseconds: 3 * 3_600_000 + 12 * 60_000), "3h12m")
        XCTAssertEqual(DurationText.format(milliseconds: 4 * 86_400_000 + 6 * 3_600_000), "4d06h")
    }
}

private extension Result where Success == ControlRequest?, Failure == ControlError {
    var failureCode: Int? {
        if case .failure(let e) = self { return e.code }
        return nil
    }
}
