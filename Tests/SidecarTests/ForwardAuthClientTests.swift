import Foundation
import NIOCore
import NIOPosix
import Protocol
import XCTest

@testable import Sidecar

/// ForwardAuthClient against a real auth service (Python's http.server, started per test):
/// every kind of answer the gateway must act on, and every way of not getting one.
final class ForwardAuthClientTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var service: Process?
    private var port = 0

    override func setUpWithError() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = [URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/forward_auth_service.py").path]
        let out = Pipe()
        p.standardOutput = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        service = p
        var line = Data()
        while !line.contains(10) {
            let more = out.fileHandleForReading.availableData
            guard !more.isEmpty else { throw XCTSkip("auth service did not start") }
            line.append(more)
        }
        port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertGreaterThan(port, 0)
    }

    override func tearDown() {
        if let service, service.isRunning { service.terminate(); service.waitUntilExit() }
        try? group.syncShutdownGracefully()
    }

    private func ask(_ uri: String, port: Int? = nil, timeout: TimeAmount = .seconds(2)) throws -> ForwardAuthAnswer {
        let target = try ForwardAuthTarget.parse("http://127.0.0.1:\(port ?? self.port)/check").get()
        let client = ForwardAuthClient(target: target, copy: ["X-Auth-User", "X-Seen"], timeout: timeout)
        let original = ForwardAuthOriginal(
            method: "DELETE", uri: uri, host: "app.example.com", scheme: "https", client: IPAddress("192.0.2.9")!,
            fields: [HeaderField("Cookie", "session=42"), HeaderField("X-Private", "secret")])
        return try client.check(original, on: group.next()).wait()
    }

    private func failure(_ answer: ForwardAuthAnswer) -> Int? {
        if case .fail(let status, _) = answer { return status }
        return nil
    }

    func testAllowCopiesNamedFieldsAndTellsTheOriginal() throws {
        let answer = try ask("/allow/x?y=1")
        XCTAssertEqual(answer, .allow(upstreamFields: [
            HeaderField("X-Auth-User", "alice"),
            HeaderField("X-Seen", "GET|/check|127.0.0.1:\(port)|DELETE|https|app.example.com|/allow/x?y=1|192.0.2.9|session=42|-"),
        ]))
    }

    func testRefusalsAndRedirectReachTheClient() throws {
        XCTAssertEqual(try ask("/deny"), .respond(status: 401, fields: [
            HeaderField("WWW-Authenticate", "Basic realm=\"sso\""), HeaderField("Content-Type", "text/plain"),
        ], body: Array("sign in first".utf8)))
        XCTAssertEqual(try ask("/forbidden"), .respond(status: 403, fields: [HeaderField("Content-Type", "text/plain")], body: Array("not you".utf8)))
        XCTAssertEqual(try ask("/redirect/a"), .respond(status: 302, fields: [
            HeaderField("Location", "https://sso.example/sign_in?rd=/redirect/a"), HeaderField("Set-Cookie", "csrf=abc; HttpOnly"),
        ], body: []))
    }

    func testFailsClosed() throws {
        XCTAssertEqual(failure(try ask("/error")), 502)
        XCTAssertEqual(failure(try ask("/unknown")), 502)
        XCTAssertEqual(failure(try ask("/garbage")), 502)
        XCTAssertEqual(failure(try ask("/huge")), 502, "a body over 64 KiB is refused, not buffered")
        let started = NIODeadline.now()
        XCTAssertEqual(failure(try ask("/slow", timeout: .milliseconds(500))), 503)
        XCTAssertLessThan(NIODeadline.now() - started, .seconds(2))
    }

    func testServiceDownIs503() throws {
        service?.terminate()
        service?.waitUntilExit()
        XCTAssertEqual(failure(try ask("/allow")), 503)
    }

    func testChecksInFlightAreBounded() throws {
        // Three slow checks hold the three places; the fourth is refused at once, and a place
        // is free again once one of them ends.
        let target = try ForwardAuthTarget.parse("http://127.0.0.1:\(port)/").get()
        let client = ForwardAuthClient(target: target, copy: [], timeout: .milliseconds(800), maxInFlight: 3)
        func original(_ uri: String) -> ForwardAuthOriginal {
            ForwardAuthOriginal(method: "GET", uri: uri, host: "h", scheme: "http", client: IPAddress("127.0.0.1")!, fields: [])
        }
        let slow = (0..<3).map { _ in client.check(original("/slow"), on: group.next()) }
        XCTAssertEqual(failure(try client.check(original("/allow"), on: group.next()).wait()), 503)
        for f in slow { XCTAssertEqual(failure(try f.wait()), 503) }
        XCTAssertEqual(try client.check(original("/allow"), on: group.next()).wait(), .allow(upstreamFields: []))
    }

    func testManyConcurrentChecks() throws {
        let target = try ForwardAuthTarget.parse("http://127.0.0.1:\(port)/").get()
        let client = ForwardAuthClient(target: target, copy: ["X-Auth-User"])
        let futures = (0..<50).map { i in
            client.check(ForwardAuthOriginal(method: "GET", uri: i % 2 == 0 ? "/allow" : "/deny", host: "h", scheme: "http",
                                             client: IPAddress("127.0.0.1")!, fields: []), on: group.next())
        }
        for (i, f) in futures.enumerated() {
            let answer = try f.wait()
            if i % 2 == 0 {
                XCTAssertEqual(answer, .allow(upstreamFields: [HeaderField("X-Auth-User", "alice")]))
            } else if case .respond(let status, _, _) = answer {
                XCTAssertEqual(status, 401)
            } else {
                XCTFail("\(answer)")
            }
        }
    }
}
