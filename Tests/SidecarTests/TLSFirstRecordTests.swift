import NIOCore
import NIOEmbedded
import XCTest

@testable import Sidecar

/// A TLS server holds the client's bytes until its first record is whole before it creates
/// an OpenSSL session; a handshake must not notice.
final class TLSFirstRecordTests: XCTestCase {
    private func channels() throws -> (server: EmbeddedChannel, client: EmbeddedChannel, recorder: Recorder) {
        let server = EmbeddedChannel()
        let client = EmbeddedChannel()
        let recorder = Recorder()
        try server.pipeline.syncOperations.addHandlers([
            try TLSHandler(context: try TLSContext.server(
                certificateChain: Fixtures.path("gateway.crt"), privateKey: Fixtures.path("gateway.key"), alpn: ["http/1.1"]),
                role: .server), recorder,
        ])
        try client.pipeline.syncOperations.addHandler(try TLSHandler(
            context: try TLSContext.client(caFile: Fixtures.path("ca.crt"), alpn: ["http/1.1"]), role: .client(serverName: "localhost")))
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try server.connect(to: address).wait()
        try client.connect(to: address).wait()
        return (server, client, recorder)
    }

    func testClientHelloByteByByteStillCompletesTheHandshake() throws {
        let (server, client, recorder) = try channels()
        var hello = try XCTUnwrap(client.readOutbound(as: ByteBuffer.self))
        while hello.readableBytes > 1 {
            try server.writeInbound(hello.readSlice(length: 1)!)
            XCTAssertNil(try server.readOutbound(as: ByteBuffer.self), "no answer before the record is whole")
        }
        try server.writeInbound(hello)
        let serverHello = try XCTUnwrap(server.readOutbound(as: ByteBuffer.self), "ServerHello once it is")
        try client.writeInbound(serverHello)
        try interactInMemory(client, server)
        XCTAssertEqual(recorder.handshake?.alpn, "http/1.1")
    }

    func testNonTLSBytesFailAtOnce() throws {
        let (server, _, recorder) = try channels()
        try server.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n"))
        XCTAssertEqual(recorder.errors.count, 1)
        XCTAssertFalse(server.isActive)
    }
}
