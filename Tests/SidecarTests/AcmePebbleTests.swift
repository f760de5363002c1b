import Foundation
import NIOCore
import NIOPosix
import XCTest

import Protocol

@testable import Sidecar

/// The ACME client against a real pebble: issuance with validation skipped, then with pebble
/// really fetching the HTTP-01 answer and really handshaking for TLS-ALPN-01 (names resolved
/// by dnsmasq to 127.0.0.1), and a validation that fails.
final class AcmePebbleTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var bed: AcmeTestBed!

    override func setUpWithError() throws {
        try AcmeTestBed.requirePebble()
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        bed = try AcmeTestBed(group: group)
    }

    override func tearDown() {
        bed?.stopAll()
        try? group?.syncShutdownGracefully()
    }

    private func client(_ pebble: AcmeTestBed.Pebble, key: AcmeKey) -> AcmeClient {
        AcmeClient(
            directoryURL: pebble.directoryURL, trustCAFile: pebble.caFile, accountKey: key, email: "ops@fastgw.test",
            group: group, timeout: .seconds(10), orderDeadline: .seconds(60))
    }

    /// The leaf's public key is the certificate key's.
    private func assertLeafMatches(_ chain: String, _ key: AcmeKey, file: StaticString = #filePath, line: UInt = #line) throws {
        try chain.write(toFile: bed.path("chain.pem"), atomically: true, encoding: .utf8)
        try key.save(pemFile: bed.path("leaf.key"))
        let fromCert = try output("/usr/bin/openssl", ["x509", "-in", bed.path("chain.pem"), "-noout", "-pubkey"])
        let fromKey = try output("/usr/bin/openssl", ["pkey", "-in", bed.path("leaf.key"), "-pubout"])
        XCTAssertFalse(fromKey.isEmpty, file: file, line: line)
        XCTAssertEqual(fromCert, fromKey, "the certificate carries the certificate key", file: file, line: line)
    }

    private func output(_ exe: String, _ args: [String]) throws -> String {
        let log = "out-\(UInt32.random(in: 0...UInt32.max)).txt"
        _ = try bed.run(exe, args, log: log)
        return bed.logText(log)
    }

    func testObtainsCertificateWhenValidationIsSkippedAndReusesTheAccount() async throws {
        let pebble = try bed.startPebble(alwaysValid: true)
        let accountKey = try AcmeKey.generate()
        try accountKey.save(pemFile: bed.path("account.key"))
        let mode = try FileManager.default.attributesOfItem(atPath: bed.path("account.key"))[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        let reloaded = try AcmeKey.load(pemFile: bed.path("account.key"))
        XCTAssertEqual(reloaded.pem, accountKey.pem)

        let acme = client(pebble, key: reloaded)
        let certificateKey = try AcmeKey.generate()
        let sink = RecordingChallengeSink()
        let hosts = ["www.fastgw.test", "api.fastgw.test"]
        let issued = try await acme.obtain(hosts: hosts, certificateKey: certificateKey, kinds: [.http01], sink: sink)
        let info = try XCTUnwrap(AcmeCertificateInfo.read(chainPEM: issued.chainPEM))
        XCTAssertEqual(Set(info.dnsNames), Set(hosts))
        XCTAssertTrue(issued.issuer.contains("Pebble"), issued.issuer)
        XCTAssertEqual(issued.notAfter, info.notAfter)
        XCTAssertLessThan(issued.notBefore, issued.notAfter)
        XCTAssertGreaterThan(issued.chainPEM.components(separatedBy: "BEGIN CERTIFICATE").count - 1, 1, "leaf and intermediate")
        try assertLeafMatches(issued.chainPEM, certificateKey)
        // Every published answer was withdrawn.
        let published = sink.log.filter { $0.hasPrefix("publish ") }.map { $0.dropFirst("publish ".count) }
        let withdrawn = sink.log.filter { $0.hasPrefix("withdraw ") }.map { $0.dropFirst("withdraw ".count) }
        XCTAssertEqual(Set(published), Set(withdrawn))

        // Same key, new client (a restart): the same account, found by newAccount.
        let first = try XCTUnwrap(acme.sessionAccountURL)
        let again = client(pebble, key: try AcmeKey.load(pemFile: bed.path("account.key")))
        let second = try await again.accountURL()
        XCTAssertEqual(first, second)
        // ARI: pebble 2.4 has no renewalInfo, so no window and no error.
        let window = await acme.renewalWindow(certificatePEM: issued.chainPEM)
        XCTAssertNil(window)
        XCTAssertNotNil(AcmeCertificateInfo.ariCertID(chainPEM: issued.chainPEM))
    }

    func testObtainsCertificateWithRealHTTP01Validation() async throws {
        let dns = try bed.startDNS(domain: "fastgw.test")
        let pebble = try bed.startPebble(alwaysValid: false, dnsPort: dns)
        let sink = try ServingChallengeSink(bed: bed, httpPort: pebble.httpPort, tlsPort: pebble.tlsPort)
        let certificateKey = try AcmeKey.generate()
        let issued = try await client(pebble, key: try AcmeKey.generate()).obtain(
            hosts: ["h1.fastgw.test"], certificateKey: certificateKey, kinds: [.http01, .tlsALPN01], sink: sink)
        XCTAssertEqual(AcmeCertificateInfo.read(chainPEM: issued.chainPEM)?.dnsNames, ["h1.fastgw.test"])
        try assertLeafMatches(issued.chainPEM, certificateKey)
        XCTAssertEqual(sink.published.count, 1)
        XCTAssertTrue(sink.published[0].hasPrefix("http-01 "))
        XCTAssertEqual(sink.published, sink.withdrawn)
        XCTAssertTrue(bed.logText("http.log").contains("GET /.well-known/acme-challenge/"), "pebble fetched the token")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: sink.webroot + "/.well-known/acme-challenge"), [])
    }

    func testObtainsCertificateWithRealTLSALPN01Validation() async throws {
        let dns = try bed.startDNS(domain: "fastgw.test")
        let pebble = try bed.startPebble(alwaysValid: false, dnsPort: dns)
        let sink = try ServingChallengeSink(bed: bed, httpPort: nil, tlsPort: pebble.tlsPort)
        let issued = try await client(pebble, key: try AcmeKey.generate()).obtain(
            hosts: ["h2.fastgw.test"], certificateKey: try AcmeKey.generate(), kinds: [.tlsALPN01, .http01], sink: sink)
        XCTAssertEqual(AcmeCertificateInfo.read(chainPEM: issued.chainPEM)?.dnsNames, ["h2.fastgw.test"])
        XCTAssertEqual(sink.published, ["tls-alpn-01 h2.fastgw.test"])
        XCTAssertEqual(sink.withdrawn, ["tls-alpn-01 h2.fastgw.test"])
    }

    /// Nothing answers on pebble's HTTP port: the order fails with pebble's problem document
    /// in the error, and the published answer is withdrawn all the same.
    func testFailedValidationSurfacesTheProblemAndWithdraws() async throws {
        let dns = try bed.startDNS(domain: "fastgw.test")
        let pebble = try bed.startPebble(alwaysValid: false, dnsPort: dns)
        let sink = RecordingChallengeSink()
        do {
            _ = try await client(pebble, key: try AcmeKey.generate()).obtain(
                hosts: ["h3.fastgw.test"], certificateKey: try AcmeKey.generate(), kinds: [.http01], sink: sink)
            XCTFail("validation cannot succeed with nothing listening")
        } catch {
            XCTAssertTrue(error.description.contains("http-01 validation of h3.fastgw.test failed"), error.description)
            XCTAssertTrue(error.description.contains("connection"), error.description)
            XCTAssertEqual(error.problemType, "urn:ietf:params:acme:error:connection")
        }
        XCTAssertEqual(sink.log.count, 2)
        XCTAssertTrue(sink.log.last?.hasPrefix("withdraw http-01 ") ?? false, "\(sink.log)")
    }

    func testServerErrorsCarryTheProblemDocument() async throws {
        let pebble = try bed.startPebble(alwaysValid: true)
        let acme = client(pebble, key: try AcmeKey.generate())
        do {
            // Names are checked before any request: wildcards are out of reach without DNS-01.
            _ = try await acme.obtain(hosts: ["*.fastgw.test"], certificateKey: try AcmeKey.generate(), kinds: [.http01], sink: RecordingChallengeSink())
            XCTFail("wildcards are refused")
        } catch {
            XCTAssertTrue(error.description.contains("wildcards need DNS-01"), error.description)
        }
        // An order pebble refuses (an identifier type it does not support): its problem
        // document, type and detail, is in the error.
        let account = try await acme.accountURL()
        let newOrder = try await acme.directory().newOrder
        do {
            _ = try await acme.post(
                newOrder, payload: .object(["identifiers": .array([.object(["type": .string("email"), "value": .string("a@fastgw.test")])])]),
                kid: account)
            XCTFail("pebble accepted an email identifier")
        } catch {
            XCTAssertTrue(error.problemType?.hasPrefix("urn:ietf:params:acme:error:") ?? false, error.description)
            XCTAssertTrue(error.description.hasPrefix("ACME server answered \(newOrder) with status 400: "), error.description)
        }
    }

    /// Pebble's certificate is not in the system store: without `ca` the client refuses it, and
    /// a `ca` file that does not exist is named in the error.
    func testServerCertificateMustBeTrusted() async throws {
        let pebble = try bed.startPebble(alwaysValid: true)
        let untrusted = AcmeClient(
            directoryURL: pebble.directoryURL, trustCAFile: nil, accountKey: try AcmeKey.generate(), email: nil, group: group,
            timeout: .seconds(5))
        do {
            _ = try await untrusted.accountURL()
            XCTFail("an untrusted server certificate was accepted")
        } catch {
            XCTAssertTrue(error.description.contains(pebble.directoryURL), error.description)
            XCTAssertTrue(error.description.contains("certificate verify failed") || error.description.contains("verification"), error.description)
        }
        let missing = AcmeClient(
            directoryURL: pebble.directoryURL, trustCAFile: bed.path("no-such-ca.pem"), accountKey: try AcmeKey.generate(), email: nil,
            group: group, timeout: .seconds(5))
        do {
            _ = try await missing.accountURL()
            XCTFail("a missing CA file went unnoticed")
        } catch {
            XCTAssertTrue(error.description.contains("no-such-ca.pem"), error.description)
        }
    }
}
