import Foundation
import NIOCore
import NIOEmbedded
import Protocol
import XCTest

@testable import Sidecar

/// The TLS half of mTLS on the tunnel, between two channels in memory: a server that asks
/// for a client certificate finishes every handshake, good certificate or bad, and reports
/// what was presented and how it verified; a chain can be verified again against a new CRL.
final class ClientCertificateTests: XCTestCase {
    private func server(crl: String? = nil, requesting: Bool = true) throws -> TLSContext {
        try TLSContext.server(
            certificateChain: Fixtures.path("gateway.crt"), privateKey: Fixtures.path("gateway.key"), alpn: ["http/1.1"],
            clientTrust: requesting ? ClientTrust(ca: Fixtures.path("ca.crt"), crl: crl.map(Fixtures.path)) : nil)
    }

    private func client(_ name: String?) throws -> TLSContext {
        try TLSContext.client(
            caFile: Fixtures.path("ca.crt"), certificateChain: name.map { Fixtures.path("\($0).crt") },
            privateKey: name.map { Fixtures.path("\($0).key") }, alpn: ["http/1.1"])
    }

    /// What the server's handshake reported for a client presenting `name` (nil: none).
    private func presented(_ name: String?, to server: TLSContext) throws -> PeerCertificate? {
        let s = EmbeddedChannel()
        let c = EmbeddedChannel()
        let sr = Recorder()
        let cr = Recorder()
        try s.pipeline.syncOperations.addHandlers([try TLSHandler(context: server, role: .server), sr])
        try c.pipeline.syncOperations.addHandlers([try TLSHandler(context: try client(name), role: .client(serverName: "localhost")), cr])
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try s.connect(to: address).wait()
        try c.connect(to: address).wait()
        try interactInMemory(c, s)
        XCTAssertNotNil(cr.handshake, "the client's handshake finished: \(cr.errors)")
        let done = try XCTUnwrap(sr.handshake, "the server's handshake finished: \(sr.errors)")
        XCTAssertTrue(sr.errors.isEmpty, "\(sr.errors)")
        return done.peerCertificate
    }

    /// SHA-256 of a PEM certificate's DER body.
    private func sha256(_ name: String) throws -> [UInt8] {
        let pem = try String(contentsOfFile: Fixtures.path("\(name).crt"), encoding: .utf8)
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return SHA256.hash(Array(try XCTUnwrap(Data(base64Encoded: body))))
    }

    func testAGoodCertificateIsReadWithItsNamesAndHash() throws {
        let c = try XCTUnwrap(try presented("agent", to: try server(crl: "ca.crl")))
        XCTAssertEqual(c.verification, .valid)
        XCTAssertEqual(c.commonNames, ["agent"])
        XCTAssertEqual(c.dnsNames, ["agent.test"])
        XCTAssertEqual(c.uris, ["spiffe://fastgw.test/agent"])
        XCTAssertEqual(c.sha256, try sha256("agent"))
        // The leaf first, then what the client sent with it (OpenSSL adds the CA it trusts).
        XCTAssertEqual(c.chainDER.first.map(SHA256.hash), c.sha256)
    }

    func testBadCertificatesFinishTheHandshakeWithTheirReason() throws {
        XCTAssertNil(try presented(nil, to: try server()), "no certificate")
        XCTAssertEqual(try presented("other-ca", to: try server())?.verification, .unknownCA)
        XCTAssertEqual(try presented("expired", to: try server())?.verification, .expired)
        XCTAssertEqual(try presented("revoked", to: try server(crl: "ca.crl"))?.verification, .revoked)
        // A server certificate (extendedKeyUsage serverAuth) is not for client authentication.
        guard case .invalid(let why)? = try presented("gateway", to: try server())?.verification else {
            return XCTFail("a serverAuth certificate passed as a client certificate")
        }
        XCTAssertTrue(why.contains("purpose"), why)
    }

    func testWithoutClientTrustNoCertificateIsAskedFor() throws {
        XCTAssertNil(try presented("agent", to: try server(requesting: false)))
    }

    func testAChainIsVerifiedAgainstANewCRL() throws {
        let before = try XCTUnwrap(try presented("revoked", to: try server()))
        XCTAssertEqual(before.verification, .valid, "not revoked without the CRL")
        let reloaded = try server(crl: "ca.crl")
        XCTAssertEqual(reloaded.reverify(before).verification, .revoked)
        let good = try XCTUnwrap(try presented("agent", to: try server()))
        let again = CertificateReverification(tls: reloaded, certificates: [good, good, before])
        XCTAssertEqual(again.verify(good).verification, .valid)
        XCTAssertEqual(again.verify(before).verification, .revoked)
        var garbage = good
        garbage.chainDER = [[0x30, 0x03, 0x02, 0x01, 0x00]]
        XCTAssertEqual(reloaded.reverify(garbage).verification, .invalid("not a certificate chain"))
    }

    func testTrustFilesAreNamedInErrors() {
        XCTAssertThrowsError(try TLSContext.server(
            certificateChain: Fixtures.path("gateway.crt"), privateKey: Fixtures.path("gateway.key"), alpn: [],
            clientTrust: ClientTrust(ca: "/nonexistent/ca.pem", crl: nil))) { e in
            XCTAssertTrue("\(e)".hasPrefix("cannot load client_ca /nonexistent/ca.pem"), "\(e)")
            XCTAssertEqual((e as? TLSError)?.file, "/nonexistent/ca.pem")
        }
        XCTAssertThrowsError(try TLSContext.server(
            certificateChain: Fixtures.path("gateway.crt"), privateKey: Fixtures.path("gateway.key"), alpn: [],
            clientTrust: ClientTrust(ca: Fixtures.path("ca.crt"), crl: Fixtures.path("ca.crt")))) { e in
            XCTAssertTrue("\(e)".hasPrefix("cannot load client_crl \(Fixtures.path("ca.crt"))"), "\(e)")
        }
    }
}
