import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import XCTest

@testable import Sidecar

final class TLSHandlerTests: XCTestCase {
    private func serverContext(cert: String = "gateway.crt", key: String = "gateway.key") throws -> TLSContext {
        try TLSContext.server(certificateChain: Fixtures.path(cert), privateKey: Fixtures.path(key), alpn: ["h2", "http/1.1"])
    }

    private func clientContext(ca: String = "ca.crt", alpn: [String] = ["http/1.1"]) throws -> TLSContext {
        try TLSContext.client(caFile: Fixtures.path(ca), alpn: alpn)
    }

    /// A client and a server channel joined in memory, both connected.
    private func pair(server: TLSContext, client: TLSContext, name: String = "localhost") throws
        -> (EmbeddedChannel, Recorder, EmbeddedChannel, Recorder) {
        let s = EmbeddedChannel()
        let c = EmbeddedChannel()
        let sr = Recorder()
        let cr = Recorder()
        try s.pipeline.syncOperations.addHandlers([try TLSHandler(context: server, role: .server), sr])
        try c.pipeline.syncOperations.addHandlers([try TLSHandler(context: client, role: .client(serverName: name)), cr])
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try s.connect(to: address).wait()
        try c.connect(to: address).wait()
        return (s, sr, c, cr)
    }

    func testHandshakeALPNAndDataBothWays() throws {
        let (s, sr, c, cr) = try pair(server: try serverContext(), client: try clientContext())
        try interactInMemory(c, s)
        XCTAssertEqual(cr.handshake?.alpn, "http/1.1")
        XCTAssertEqual(sr.handshake?.alpn, "http/1.1")

        let written = c.writeAndFlush(ByteBuffer(string: "from client"))
        s.writeAndFlush(ByteBuffer(string: "from server"), promise: nil)
        try interactInMemory(c, s)
        XCTAssertNoThrow(try written.wait())
        XCTAssertEqual(String(buffer: sr.received), "from client")
        XCTAssertEqual(String(buffer: cr.received), "from server")

        // close_notify: the server sees the client's orderly close and closes too.
        c.close(promise: nil)
        try interactInMemory(c, s)
        XCTAssertFalse(s.isActive)
    }

    func testWritesBeforeTheHandshakeAreDeliveredAfterIt() throws {
        let (s, sr, c, _) = try pair(server: try serverContext(), client: try clientContext())
        let early = c.writeAndFlush(ByteBuffer(string: "early bird"))
        try interactInMemory(c, s)
        XCTAssertNoThrow(try early.wait())
        XCTAssertEqual(String(buffer: sr.received), "early bird")
    }

    func testLargeTransferInBothDirections() throws {
        let (s, sr, c, cr) = try pair(server: try serverContext(), client: try clientContext())
        try interactInMemory(c, s)
        let payload = ByteBuffer(repeating: 0x5a, count: 3 << 20)
        c.writeAndFlush(payload, promise: nil)
        s.writeAndFlush(payload, promise: nil)
        try interactInMemory(c, s)
        XCTAssertEqual(sr.received, payload)
        XCTAssertEqual(cr.received, payload)
    }

    private func handshakeError(server: TLSContext, client: TLSContext, name: String = "localhost") throws -> String {
        let (s, _, c, cr) = try pair(server: server, client: client, name: name)
        try interactInMemory(c, s)
        XCTAssertNil(cr.handshake)
        XCTAssertFalse(c.isActive, "a failed handshake closes the connection")
        return cr.errors.map { "\($0)" }.joined(separator: "; ")
    }

    func testHostnameMismatchIsExplained() throws {
        let message = try handshakeError(server: try serverContext(), client: try clientContext(), name: "gw.example.com")
        XCTAssertTrue(message.contains("verification failed: hostname mismatch"), message)
    }

    func testUnknownCAIsExplained() throws {
        let message = try handshakeError(server: try serverContext(), client: try clientContext(ca: "other-ca.crt"))
        XCTAssertTrue(message.contains("verification failed: unable to get local issuer certificate"), message)
    }

    func testExpiredCertificateIsExplained() throws {
        let message = try handshakeError(server: try serverContext(cert: "expired.crt", key: "expired.key"), client: try clientContext())
        XCTAssertTrue(message.contains("verification failed: certificate has expired"), message)
    }

    func testIPAddressIsVerifiedAgainstSubjectAltName() throws {
        let (s, _, c, cr) = try pair(server: try serverContext(), client: try clientContext(), name: "127.0.0.1")
        try interactInMemory(c, s)
        XCTAssertNotNil(cr.handshake)
        let message = try handshakeError(server: try serverContext(), client: try clientContext(), name: "10.9.8.7")
        XCTAssertTrue(message.contains("verification failed"), message)
    }

    func testGarbageInsteadOfTLSFailsCleanly() throws {
        let s = EmbeddedChannel()
        let sr = Recorder()
        try s.pipeline.syncOperations.addHandlers([try TLSHandler(context: try serverContext(), role: .server), sr])
        try s.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try? s.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        XCTAssertFalse(s.isActive)
        XCTAssertTrue("\(sr.errors)".contains("TLS handshake failed"), "\(sr.errors)")
    }

    func testConfigurationErrorsNameTheFile() {
        XCTAssertThrowsError(try TLSContext.server(certificateChain: "/nonexistent.crt", privateKey: "/x.key", alpn: [])) { e in
            XCTAssertTrue("\(e)".hasPrefix("cannot load certificate /nonexistent.crt"), "\(e)")
        }
        XCTAssertThrowsError(try TLSContext.server(certificateChain: Fixtures.path("gateway.crt"), privateKey: Fixtures.path("ca.key"), alpn: [])) { e in
            XCTAssertTrue("\(e)".contains("does not match certificate"), "\(e)")
        }
    }
}
