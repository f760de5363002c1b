import Foundation
import NIOCore
import NIOPosix
import Protocol
import XCTest

@testable import Sidecar

/// The TLS handler and the HTTP/2 session against independent implementations, over real
/// loopback sockets: OpenSSL's s_server / s_client, and nghttp2's nghttpd / nghttp / h2load
/// in the standard HTTP/2 roles.
final class RealPeerTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var processes: [Process] = []

    override func setUp() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() {
        for p in processes where p.isRunning { p.terminate(); p.waitUntilExit() }
        try? group.syncShutdownGracefully()
    }

    private func freePort() throws -> Int {
        let ch = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        let port = ch.localAddress!.port!
        try ch.close().wait()
        return port
    }

    private func spawn(_ path: String, _ args: [String], stdin: String? = nil) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        if let stdin {
            let input = Pipe()
            p.standardInput = input
            try p.run()
            input.fileHandleForWriting.write(Data(stdin.utf8))
        } else {
            p.standardInput = FileHandle.nullDevice
            try p.run()
        }
        processes.append(p)
        return (p, out)
    }

    private func waitForPort(_ port: Int) throws {
        for _ in 0..<100 {
            if let ch = try? ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).wait() {
                try ch.close().wait()
                return
            }
            usleep(50_000)
        }
        XCTFail("nothing listens on \(port)")
    }

    // MARK: TLS

    func testClientAgainstOpenSSLServer() throws {
        let port = try freePort()
        _ = try spawn("/usr/bin/openssl", [
            "s_server", "-accept", "\(port)", "-cert", Fixtures.path("gateway.crt"), "-key", Fixtures.path("gateway.key"),
            "-rev", "-quiet",
        ])
        try waitForPort(port)
        let tls = try TLSContext.client(caFile: Fixtures.path("ca.crt"), alpn: [])
        let done = group.next().makePromise(of: String.self)
        let channel = try ClientBootstrap(group: group).channelInitializer { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandlers([
                    try TLSHandler(context: tls, role: .client(serverName: "localhost")), LineCollector(done: done),
                ])
            }
        }.connect(host: "127.0.0.1", port: port).wait()
        try channel.writeAndFlush(ByteBuffer(string: "hello fastgw\n")).wait()
        let line = try done.futureResult.wait()
        XCTAssertEqual(line, "wgtsaf olleh")
        channel.close(promise: nil)
    }

    func testServerAgainstOpenSSLClient() throws {
        let tls = try TLSContext.server(
            certificateChain: Fixtures.path("gateway.crt"), privateKey: Fixtures.path("gateway.key"), alpn: ["http/1.1"])
        let server = try ServerBootstrap(group: group).childChannelInitializer { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandlers([try TLSHandler(context: tls, role: .server), EchoOnceHandler()])
            }
        }.bind(host: "127.0.0.1", port: 0).wait()
        defer { server.close(promise: nil) }
        let port = server.localAddress!.port!
        let (p, out) = try spawn("/usr/bin/openssl", [
            "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", Fixtures.path("ca.crt"), "-servername", "localhost",
            "-verify_return_error", "-alpn", "http/1.1",
        ], stdin: "echo me\n")
        p.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(text.contains("Verify return code: 0 (ok)"), text)
        XCTAssertTrue(text.contains("ALPN protocol: http/1.1"), text)
        XCTAssertTrue(text.contains("echo me"), text)
    }

    // MARK: HTTP/2

    private let tuning = H2Tuning(connectionWindow: 1 << 20, streamWindow: 128 << 10, sendWatermark: 64 << 10)

    func testClientSessionDownloadsFromNghttpd() throws {
        let dir = NSTemporaryDirectory() + "fastgw-nghttpd-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var body = Data(count: 3 << 20)
        for i in 0..<body.count { body[i] = UInt8(truncatingIfNeeded: i &* 31) }
        try body.write(to: URL(fileURLWithPath: dir + "/blob"))
        let port = try freePort()
        _ = try spawn("/usr/sbin/nghttpd", ["--no-tls", "-d", dir, "\(port)"])
        try waitForPort(port)

        let done = group.next().makePromise(of: (String, Data).self)
        let tuning = self.tuning
        let channel = try ClientBootstrap(group: group).channelInitializer { ch in
            ch.eventLoop.makeCompletedFuture {
                let session = try H2Session(role: .client, tuning: tuning, allocator: ch.allocator)
                let connection = TunnelConnection(session: session, keepaliveInterval: .seconds(5), keepaliveTimeout: .seconds(5))
                connection.delegate = DownloadDelegate(path: "/blob", authority: "127.0.0.1:\(port)", done: done)
                try ch.pipeline.syncOperations.addHandler(connection)
            }
        }.connect(host: "127.0.0.1", port: port).wait()
        let (status, received) = try done.futureResult.wait()
        channel.close(promise: nil)
        XCTAssertEqual(status, "200")
        XCTAssertEqual(received, body, "3 MiB through a 128 KiB stream window, granted back as consumed")
    }

    func testServerSessionUnderH2loadAndNghttp() throws {
        let tuning = self.tuning
        let server = try ServerBootstrap(group: group).childChannelInitializer { ch in
            ch.eventLoop.makeCompletedFuture {
                let session = try H2Session(role: .server, tuning: tuning, allocator: ch.allocator)
                let connection = TunnelConnection(session: session, keepaliveInterval: .seconds(5), keepaliveTimeout: .seconds(5))
                connection.delegate = ResponderDelegate()
                try ch.pipeline.syncOperations.addHandler(connection)
            }
        }.bind(host: "127.0.0.1", port: 0).wait()
        defer { server.close(promise: nil) }
        let port = server.localAddress!.port!

        let (load, loadOut) = try spawn("/usr/bin/h2load", ["-n", "2000", "-c", "4", "-m", "20", "http://127.0.0.1:\(port)/load"])
        load.waitUntilExit()
        let loadText = String(decoding: loadOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(loadText.contains("2000 succeeded, 0 failed, 0 errored"), loadText)

        let (get, getOut) = try spawn("/usr/bin/nghttp", ["-v", "http://127.0.0.1:\(port)/hello"])
        get.waitUntilExit()
        let text = String(decoding: getOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(text.contains("hello from fastgw: /hello"), text)
        XCTAssertEqual(get.terminationStatus, 0, text)
    }
}

/// Completes with the first line received.
private final class LineCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let done: EventLoopPromise<String>
    var text = ""

    init(done: EventLoopPromise<String>) { self.done = done }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        text += String(buffer: unwrapInboundIn(data))
        if let nl = text.firstIndex(of: "\n") { done.succeed(String(text[..<nl])) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { done.fail(error) }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(ChannelError.eof)  // no-op once succeeded
    }
}

/// Echoes the first chunk and closes (with close_notify).
private final class EchoOnceHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(data).whenComplete { _ in ctx.value.close(promise: nil) }
    }
}

/// Client role: one GET, data consumed as it arrives.
private final class DownloadDelegate: TunnelConnectionDelegate, TunnelStreamHandler {
    let path: String
    let authority: String
    let done: EventLoopPromise<(String, Data)>
    var status = ""
    var body = Data()
    weak var connection: TunnelConnection?
    var id: Int32 = 0

    init(path: String, authority: String, done: EventLoopPromise<(String, Data)>) {
        self.path = path
        self.authority = authority
        self.done = done
    }

    func tunnelEstablished(_ connection: TunnelConnection) {
        self.connection = connection
        do {
            id = try connection.openStream(headers: [
                HeaderField(":method", "GET"), HeaderField(":scheme", "http"),
                HeaderField(":authority", authority), HeaderField(":path", path),
            ], handler: self)
            connection.finish(stream: id)
        } catch {
            done.fail(error)
        }
    }

    func tunnel(_ c: TunnelConnection, incomingStream id: Int32, headers: [HeaderField], endStream: Bool) -> TunnelStreamHandler? { nil }
    func tunnelReceivedGoaway(_ connection: TunnelConnection) {}
    func tunnelClosed(_ connection: TunnelConnection, reason: String) { done.fail(H2Error(description: reason)) }

    func received(headers: [HeaderField], endStream: Bool) { status = headers[":status"] ?? status }
    func received(data: ByteBuffer) {
        body.append(contentsOf: data.readableBytesView)
        connection?.consume(stream: id, bytes: data.readableBytes)
    }
    func remoteEnded() {}
    func closed(errorCode: UInt32) { done.succeed((status, body)) }
    func writable() {}
}

/// Server role: answers every request with a short text naming its path.
private final class ResponderDelegate: TunnelConnectionDelegate {
    func tunnelEstablished(_ connection: TunnelConnection) {}
    func tunnelReceivedGoaway(_ connection: TunnelConnection) {}
    func tunnelClosed(_ connection: TunnelConnection, reason: String) {}

    func tunnel(_ c: TunnelConnection, incomingStream id: Int32, headers: [HeaderField], endStream: Bool) -> TunnelStreamHandler? {
        c.respond(stream: id, headers: [HeaderField(":status", "200"), HeaderField("content-type", "text/plain")], endStream: false)
        _ = c.write(stream: id, ByteBuffer(string: "hello from fastgw: \(headers[":path"] ?? "")\n"))
        c.finish(stream: id)
        return DiscardBody(connection: c, id: id)
    }
}

private final class DiscardBody: TunnelStreamHandler {
    let connection: TunnelConnection
    let id: Int32
    init(connection: TunnelConnection, id: Int32) {
        self.connection = connection
        self.id = id
    }
    func received(headers: [HeaderField], endStream: Bool) {}
    func received(data: ByteBuffer) { connection.consume(stream: id, bytes: data.readableBytes) }
    func remoteEnded() {}
    func closed(errorCode: UInt32) {}
    func writable() {}
}
