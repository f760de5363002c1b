import Foundation
import NIOPosix
import Protocol
import XCTest

@testable import Sidecar

/// Keys, CSRs and TLS-ALPN-01 certificates made with OpenSSL, checked by the openssl tool.
final class AcmeCryptoTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var bed: AcmeTestBed!

    override func setUpWithError() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        bed = try AcmeTestBed(group: group)
    }

    override func tearDown() {
        bed.stopAll()
        try? group.syncShutdownGracefully()
    }

    private func openssl(_ args: [String]) throws -> (status: Int32, output: String) {
        let log = "openssl-\(UInt32.random(in: 0...UInt32.max)).log"
        let status = try bed.run("/usr/bin/openssl", args, log: log)
        return (status, bed.logText(log))
    }

    func testKeySavesPrivatelyAndLoadsBack() throws {
        let key = try AcmeKey.generate()
        XCTAssertTrue(key.pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        XCTAssertEqual(key.publicCoordinates.x.count, 32)
        XCTAssertEqual(key.publicCoordinates.y.count, 32)
        let file = bed.path("account.key")
        try "old".write(toFile: file, atomically: true, encoding: .utf8)
        try key.save(pemFile: file)
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        XCTAssertEqual(attributes[.posixPermissions] as? Int, 0o600)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: bed.directory).filter { $0.contains(".tmp") }, [])
        let loaded = try AcmeKey.load(pemFile: file)
        XCTAssertEqual(loaded.pem, key.pem)
        XCTAssertEqual(try AcmeKey(pem: key.pem).publicCoordinates.x, key.publicCoordinates.x)
        XCTAssertEqual(try openssl(["pkey", "-in", file, "-noout", "-check"]).status, 0)
    }

    func testKeyErrorsNameTheFile() throws {
        XCTAssertThrowsError(try AcmeKey.generate().save(pemFile: bed.path("missing-dir/k.pem"))) { error in
            XCTAssertTrue("\(error)".contains("missing-dir/k.pem"), "\(error)")
        }
        XCTAssertThrowsError(try AcmeKey.load(pemFile: bed.path("nothing.pem"))) { error in
            XCTAssertTrue("\(error)".contains("nothing.pem"), "\(error)")
        }
        try "garbage".write(toFile: bed.path("garbage.pem"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try AcmeKey.load(pemFile: bed.path("garbage.pem")))
        XCTAssertEqual(try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", bed.path("p384.pem")]).status, 0)
        XCTAssertThrowsError(try AcmeKey.load(pemFile: bed.path("p384.pem"))) { error in
            XCTAssertTrue("\(error)".contains("not a P-256"), "\(error)")
        }
        XCTAssertEqual(try openssl(["genpkey", "-algorithm", "ED25519", "-out", bed.path("ed.pem")]).status, 0)
        XCTAssertThrowsError(try AcmeKey.load(pemFile: bed.path("ed.pem")))
    }

    /// The DER signature verifies with openssl, and becomes a 64-byte r||s for JWS.
    func testSignatureVerifiesAndConvertsToRaw() throws {
        let key = try AcmeKey.generate()
        let message = Array("header.payload".utf8)
        let der = try key.signDER(message)
        XCTAssertEqual(AcmeJWS.rawSignature(fromDER: der)?.count, 64)
        try Data(message).write(to: URL(fileURLWithPath: bed.path("msg")))
        try Data(der).write(to: URL(fileURLWithPath: bed.path("sig")))
        try key.save(pemFile: bed.path("k.pem"))
        XCTAssertEqual(try openssl(["pkey", "-in", bed.path("k.pem"), "-pubout", "-out", bed.path("pub.pem")]).status, 0)
        let verified = try openssl(["dgst", "-sha256", "-verify", bed.path("pub.pem"), "-signature", bed.path("sig"), bed.path("msg")])
        XCTAssertEqual(verified.status, 0, verified.output)
    }

    func testCSRCarriesEveryHostAndIsSignedByTheCertificateKey() throws {
        let key = try AcmeKey.generate()
        let der = try AcmeCSR.der(hosts: ["a.fastgw.test", "b.fastgw.test"], key: key)
        try Data(der).write(to: URL(fileURLWithPath: bed.path("csr.der")))
        let text = try openssl(["req", "-inform", "DER", "-in", bed.path("csr.der"), "-noout", "-text", "-verify"])
        XCTAssertEqual(text.status, 0, text.output)
        XCTAssertTrue(text.output.contains("DNS:a.fastgw.test, DNS:b.fastgw.test"), text.output)
        XCTAssertTrue(text.output.contains("verify OK") || text.output.contains("Certificate request self-signature verify OK"), text.output)
        for hostile in [[], ["*.fastgw.test"], ["a.fastgw.test,DNS:evil.example"], ["a.fastgw.test", "IP:127.0.0.1"]] {
            XCTAssertThrowsError(try AcmeCSR.der(hosts: hostile, key: key), "\(hostile)")
        }
    }

    /// RFC 8737 §3: SAN is the host alone, acmeIdentifier is critical and holds the DER
    /// OCTET STRING of SHA-256(key authorization).
    func testTLSALPNChallengeCertificate() throws {
        let made = try TLSALPNChallengeCertificate.make(host: "h.fastgw.test", keyAuthorization: "token.thumb")
        try made.certificatePEM.write(toFile: bed.path("alpn.crt"), atomically: true, encoding: .utf8)
        let text = try openssl(["x509", "-in", bed.path("alpn.crt"), "-noout", "-text"])
        XCTAssertEqual(text.status, 0, text.output)
        XCTAssertTrue(text.output.contains("1.3.6.1.5.5.7.1.31: critical"), text.output)
        XCTAssertTrue(text.output.contains("DNS:h.fastgw.test"), text.output)
        let digest = Hex.encode(SHA256.hash(Array("token.thumb".utf8)))
        let parsed = try openssl(["asn1parse", "-in", bed.path("alpn.crt")])
        XCTAssertTrue(parsed.output.contains("[HEX DUMP]:0420" + digest.uppercased()), "extension value is 04 20 || SHA-256: " + parsed.output)
        XCTAssertEqual(AcmeCertificateInfo.read(chainPEM: made.certificatePEM)?.dnsNames, ["h.fastgw.test"])
        XCTAssertNotNil(try? AcmeKey(pem: made.privateKeyPEM))
        XCTAssertThrowsError(try TLSALPNChallengeCertificate.make(host: "bad host", keyAuthorization: "x"))
    }

    func testCertificateInfoOfAChainAndOfGarbage() throws {
        let chain = try String(contentsOfFile: Fixtures.path("gateway.crt"), encoding: .utf8)
        let info = try XCTUnwrap(AcmeCertificateInfo.read(chainPEM: chain))
        XCTAssertLessThan(info.notBefore, info.notAfter)
        XCTAssertFalse(info.issuer.isEmpty)
        XCTAssertNil(AcmeCertificateInfo.read(chainPEM: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
        XCTAssertNil(AcmeCertificateInfo.read(chainPEM: ""))
    }
}
