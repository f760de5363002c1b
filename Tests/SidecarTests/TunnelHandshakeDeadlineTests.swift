import Logging
import NIOCore
import NIOEmbedded
import Protocol
import XCTest

@testable import Sidecar

/// The tunnel listener's handshake deadline and refusals on EmbeddedChannels: a refusal
/// before TLS is up closes without writing (the write could never complete), one after it
/// answers and closes.
final class TunnelHandshakeDeadlineTests: XCTestCase {
    private let token = "0123456789abcdef0123"

    private func gateway() throws -> GatewayContext {
        let config = try GatewayConfig.parse(text: """
            [tunnel]
            cert = "\(Fixtures.path("gateway.crt"))"
            key = "\(Fixtures.path("gateway.key"))"
            handshake_timeout = "2s"
            [[agent]]
            name = "a"
            token = "\(token)"
            """, file: "/tmp/gateway.toml") { _ in "" }.get()
        let tls = try TLSContext.server(certificateChain: config.tunnel.cert, privateKey: config.tunnel.key, alpn: ["http/1.1"])
        let stats = GatewayStats()
        let settings = GatewayContext.Settings(
            config: config, tls: tls, publicTLS: try PublicCertificates.build(config).get(), counters: stats.policies)
        return GatewayContext(settings: settings, stats: stats, logger: Logger(label: "test"))
    }

    /// A server channel as the tunnel listener sets it up, connected.
    private func tunnelChannel(_ gateway: GatewayContext) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        channel.remoteAddress = try SocketAddress(ipAddress: "192.0.2.7", port: 40000)
        try channel.pipeline.syncOperations.addHandlers([
            try TLSHandler(context: XCTUnwrap(gateway.settings.tls), role: .server), TunnelAcceptHandler(gateway: gateway),
        ])
        try channel.connect(to: try SocketAddress(ipAddress: "192.0.2.7", port: 40000)).wait()
        return channel
    }

    func testSilentConnectionClosesAtTheDeadlineWithoutWriting() throws {
        let gw = try gateway()
        let channel = try tunnelChannel(gw)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1999))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(channel.isActive, "closed at the deadline")
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "nothing written before TLS")
        XCTAssertEqual(gw.stats.handshakesRefused.snapshot, ["408": 1])
    }

    func testHalfAClientHelloClosesAtTheDeadline() throws {
        let gw = try gateway()
        let server = try tunnelChannel(gw)
        let client = EmbeddedChannel()
        try client.pipeline.syncOperations.addHandler(
            try TLSHandler(context: try TLSContext.client(caFile: Fixtures.path("ca.crt"), alpn: ["http/1.1"]),
                           role: .client(serverName: "localhost")))
        try client.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var hello = try XCTUnwrap(client.readOutbound(as: ByteBuffer.self))
        try server.writeInbound(hello.readSlice(length: hello.readableBytes / 2)!)
        server.embeddedEventLoop.advanceTime(by: .seconds(2))
        XCTAssertFalse(server.isActive)
        XCTAssertNil(try server.readOutbound(as: ByteBuffer.self), "no answer to half a hello")
    }

    func testWrongTokenAfterTLSIsAnsweredThenClosedAndFeedsTheThrottle() throws {
        let gw = try gateway()
        for attempt in 1...6 {
            let server = try tunnelChannel(gw)
            let client = EmbeddedChannel()
            let recorder = Recorder()
            try client.pipeline.syncOperations.addHandlers([
                try TLSHandler(context: try TLSContext.client(caFile: Fixtures.path("ca.crt"), alpn: ["http/1.1"]),
                               role: .client(serverName: "localhost")), recorder,
            ])
            try client.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try interactInMemory(client, server)
            XCTAssertNotNil(recorder.handshake)
            let request = TunnelHandshake.request(host: "localhost", token: "wrong-token-0123456789", agent: "a", instance: "i")
            client.writeAndFlush(ByteBuffer(bytes: request.serialized()), promise: nil)
            try interactInMemory(client, server)
            XCTAssertTrue(String(buffer: recorder.received).hasPrefix("HTTP/1.1 401"), "attempt \(attempt)")
            XCTAssertFalse(server.isActive, "closed once the answer was written")
        }
        XCTAssertEqual(gw.stats.addressesBlocked.value, 1, "blocked after the fifth failure")
    }
}

/// "Write then close" closes after its grace period even when the write never completes.
final class BoundedCloseTests: XCTestCase {
    func testClosesAfterTheGraceWhenTheWriteHangs() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let write = channel.eventLoop.makePromise(of: Void.self)
        BoundedClose.close(channel, after: write.futureResult, grace: .seconds(2))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1999))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(channel.isActive)
        write.succeed()
    }

    func testClosesAsSoonAsTheWriteCompletes() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let write = channel.eventLoop.makePromise(of: Void.self)
        BoundedClose.close(channel, after: write.futureResult)
        write.succeed()
        XCTAssertFalse(channel.isActive)
    }
}
