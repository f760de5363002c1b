import Protocol
import XCTest

final class AcmeConfigTests: XCTestCase {
    private let https = """
        [[listener]]
        name = "web"
        protocol = "https"
        listen = "0.0.0.0:443"

        """

    private func parse(_ text: String) -> Result<GatewayConfig, ConfigError> {
        GatewayConfigFixture().parse(text)
    }

    func testAcmeIsReadWithDefaults() throws {
        let c = try parse(https + """
            [acme]
            directory = "https://acme.test/dir"
            email = "ops@example.com"
            [[certificate]]
            acme = true
            hosts = ["a.example.com", "B.example.com", "a.example.com"]
            """).get()
        let acme = try XCTUnwrap(c.acme)
        XCTAssertEqual(acme.directory, "https://acme.test/dir")
        XCTAssertEqual(acme.email, "ops@example.com")
        XCTAssertEqual(acme.stateDirectory, "/var/lib/fastgw/acme")
        XCTAssertEqual(acme.challenges, ["http-01", "tls-alpn-01"])
        XCTAssertNil(acme.renewBefore)
        XCTAssertEqual(acme.certificates, [["a.example.com", "b.example.com"]])
        XCTAssertTrue(c.certificates.isEmpty, "an acme certificate has no files")
    }

    func testOptionalKeys() throws {
        let acme = try XCTUnwrap(parse(https + """
            [acme]
            directory = "https://acme.test/dir"
            ca = "pebble.pem"
            state_directory = "/srv/acme"
            challenges = ["tls-alpn-01"]
            renew_before = "20s"
            """).get().acme)
        XCTAssertEqual(acme.ca, "/etc/fastgw/pebble.pem")
        XCTAssertEqual(acme.stateDirectory, "/srv/acme")
        XCTAssertEqual(acme.challenges, ["tls-alpn-01"])
        XCTAssertEqual(acme.renewBefore, .seconds(20))
    }

    func testMistakesAreErrorsWithALine() {
        XCTAssertEqual(GatewayConfigFixture().errors(https + """
            [acme]
            directory = "http://acme.test/dir"
            email = "nobody"
            challenges = ["dns-01", "http-01", "http-01"]
            renew_before = "soon"
            state_directory = "credential:acme"
            colour = 1
            """), [
                "/etc/fastgw/gateway.toml:12: [acme] directory \"http://acme.test/dir\" must be an https:// URL (RFC 8555 §6.1)",
                "/etc/fastgw/gateway.toml:13: [acme] email \"nobody\" is not an address",
                "/etc/fastgw/gateway.toml:16: state_directory \"credential:acme\": fastgw creates this file, so it cannot be a systemd credential (those are read-only)",
                "/etc/fastgw/gateway.toml:14: challenges: \"dns-01\" is not one of: http-01, tls-alpn-01 (dns-01 is not supported)",
                "/etc/fastgw/gateway.toml:14: challenges names a type twice",
                "/etc/fastgw/gateway.toml:15: renew_before \"soon\" is not a duration (examples: \"500ms\", \"15s\", \"2m\")",
                "/etc/fastgw/gateway.toml:17: unknown key \"colour\" in [acme]",
            ])
    }

    func testAcmeCertificateEntriesAreChecked() {
        XCTAssertEqual(GatewayConfigFixture().errors(https + """
            [[certificate]]
            acme = true
            cert = "a.crt"
            hosts = ["*.example.com"]
            """), [
                "/etc/fastgw/gateway.toml:13: cert: a certificate with acme = true is obtained by the gateway, it has no cert file",
                "/etc/fastgw/gateway.toml:12: acme = true needs an [acme] section (directory, email)",
                "/etc/fastgw/gateway.toml:14: hosts: \"*.example.com\": ACME wildcard certificates need the DNS-01 challenge, which fastgw does not do; use a [[certificate]] with cert and key for it",
                "/etc/fastgw/gateway.toml:14: hosts is empty",
                "/etc/fastgw/gateway.toml: listener \"web\": protocol \"https\" needs a certificate: give it cert and key, or add a [[certificate]]",
            ])
    }

    func testAHostInTwoAcmeCertificatesIsRefused() {
        XCTAssertEqual(GatewayConfigFixture().errors(https + """
            [acme]
            directory = "https://acme.test/dir"

            [[certificate]]
            acme = true
            hosts = ["a.example.com", "b.example.com"]

            [[certificate]]
            acme = true
            hosts = ["c.example.com", "a.example.com"]
            """), [
                "/etc/fastgw/gateway.toml:20: hosts: \"a.example.com\" is already in another [[certificate]] with acme = true; a host gets one ACME certificate",
            ])
    }

    func testAnHTTPSListenerWithoutCertificatesNeedsAcme() {
        XCTAssertEqual(GatewayConfigFixture().errors(https), [
            "/etc/fastgw/gateway.toml: listener \"web\": protocol \"https\" needs a certificate: give it cert and key, or add a [[certificate]]",
        ])
        XCTAssertEqual(GatewayConfigFixture().errors(https + "[acme]\ndirectory = \"https://acme.test/dir\"\n"), ["accepted"])
    }
}

final class AcmeHostsTests: XCTestCase {
    private func config(hosts: [String], acme: Bool = true, explicit: String = "") throws -> GatewayConfig {
        var fixture = GatewayConfigFixture()
        fixture.base = fixture.base.replacingOccurrences(
            of: "token = \"0123456789abcdef0123\"",
            with: "token = \"0123456789abcdef0123\"\nallow_hosts = [\(hosts.map { "\"\($0)\"" }.joined(separator: ", "))]")
        return try fixture.parse("""
            [[listener]]
            name = "web"
            protocol = "https"
            listen = "0.0.0.0:443"
            \(acme ? "[acme]\ndirectory = \"https://acme.test/dir\"\n" : "")\(explicit)
            """).get()
    }

    func testExactHostsNoStaticCertificateCoversGetOneEach() throws {
        let c = try config(hosts: ["a.example.com", "static.example.com", "*.wild.example.com", "b.example.com"],
                           explicit: "[[certificate]]\nacme = true\nhosts = [\"x.example.com\", \"b.example.com\"]\n")
        let plan = AcmeHosts.plan(c, covered: [.exact("static.example.com")])
        XCTAssertEqual(plan.certificates, [["x.example.com", "b.example.com"], ["a.example.com"]])
        XCTAssertEqual(plan.notes, [
            "agent \"a\": *.wild.example.com gets no ACME certificate (wildcards need DNS-01, which fastgw does not do): serve it with a [[certificate]] that has cert and key",
        ])
    }

    /// Names no CA issues for would stay pending (refused) forever: left out, with a note.
    func testHostsACannotIssueForAreLeftOutWithANote() throws {
        let c = try config(hosts: ["intranet", "a.example.com", "host.123"],
                           explicit: "[[certificate]]\nacme = true\nhosts = [\"x.example.com\", \"localhost\"]\n")
        let plan = AcmeHosts.plan(c, covered: [])
        XCTAssertEqual(plan.certificates, [["x.example.com"], ["a.example.com"]])
        XCTAssertEqual(plan.notes.count, 3, "\(plan.notes)")
        XCTAssertTrue(plan.notes[0].contains("\"localhost\" gets no ACME certificate"), plan.notes[0])
        XCTAssertTrue(plan.notes[1].contains("intranet gets no ACME certificate"), plan.notes[1])
        XCTAssertTrue(plan.notes[2].contains("host.123 gets no ACME certificate"), plan.notes[2])
    }

    /// HTTP-01 needs an http listener; asked for explicitly without one, check warns.
    func testAChallengeKindWithoutItsListenerIsNoted() throws {
        let c = try config(hosts: ["a.example.com"], explicit: "challenges = [\"http-01\"]\n")
        XCTAssertEqual(AcmeHosts.plan(c, covered: []).notes, [
            "[acme] challenges: http-01 needs a listener with protocol \"http\" (on port 80 for a public CA); it is not used",
        ])
        XCTAssertEqual(AcmeHosts.plan(try config(hosts: ["a.example.com"]), covered: []).notes, [], "the default has tls-alpn-01")
    }

    func testChallengeKindsForAnOrderFollowTheListenersAndThePreviousFailure() {
        let both: [AcmeChallengeKind] = [.http01, .tlsALPN01]
        XCTAssertEqual(AcmeChallengeKind.forOrder(configured: both, httpListener: true, httpsListener: true, lastFailed: nil), both)
        XCTAssertEqual(AcmeChallengeKind.forOrder(configured: both, httpListener: false, httpsListener: true, lastFailed: nil), [.tlsALPN01])
        XCTAssertEqual(AcmeChallengeKind.forOrder(configured: both, httpListener: true, httpsListener: true, lastFailed: .http01), [.tlsALPN01, .http01])
        XCTAssertEqual(AcmeChallengeKind.forOrder(configured: [.http01], httpListener: false, httpsListener: true, lastFailed: nil), [])
        XCTAssertTrue(AcmeChallengeKind.isValidationFailure(problemType: "urn:ietf:params:acme:error:connection"))
        XCTAssertTrue(AcmeChallengeKind.isValidationFailure(problemType: "urn:ietf:params:acme:error:incorrectResponse"))
        XCTAssertFalse(AcmeChallengeKind.isValidationFailure(problemType: "urn:ietf:params:acme:error:rateLimited"))
        XCTAssertFalse(AcmeChallengeKind.isValidationFailure(problemType: nil))
    }

    func testAWildcardAStaticCertificateServesIsNoNote() throws {
        let c = try config(hosts: ["*.a.example.com", "x.a.example.com"])
        let plan = AcmeHosts.plan(c, covered: [.wildcard(suffix: "example.com")])
        XCTAssertEqual(plan, AcmeHosts.Plan())
    }

    func testNothingWithoutAcme() throws {
        var fixture = GatewayConfigFixture()
        fixture.base += "allow_hosts = [\"a.example.com\"]\n"
        let c = try fixture.parse("[[certificate]]\ncert = \"c\"\nkey = \"k\"\n[[listener]]\nname = \"w\"\nprotocol = \"https\"\nlisten = \"0.0.0.0:443\"\n").get()
        XCTAssertEqual(AcmeHosts.plan(c, covered: []).certificates, [])
    }
}

final class AcmeRenewalTests: XCTestCase {
    func testTwoThirdsOfTheLifetimeMovedEarlierByJitterAtMost() {
        let r = AcmeRenewal()
        XCTAssertEqual(r.renewAt(notBefore: 0, notAfter: 90 * 86400, random: 0), 60 * 86400)
        let earliest = r.renewAt(notBefore: 0, notAfter: 90 * 86400, random: 0.999_999)
        XCTAssertLessThan(earliest, 60 * 86400)
        XCTAssertGreaterThan(earliest, 60 * 86400 - 90 * 86400 / 50 - 1)
    }

    func testRenewBeforeAndTheAriWindow() {
        let r = AcmeRenewal(renewBefore: 20)
        XCTAssertEqual(r.renewAt(notBefore: 1000, notAfter: 1300, random: 0.9), 1280, "renew_before is exact")
        // A renew_before as long as the lifetime or longer falls back to two thirds of it.
        XCTAssertEqual(AcmeRenewal(renewBefore: 9999).renewAt(notBefore: 1000, notAfter: 1300, random: 0), 1200)
        XCTAssertEqual(AcmeRenewal(renewBefore: 300).renewAt(notBefore: 1000, notAfter: 1300, random: 0), 1200)
        XCTAssertTrue(AcmeRenewal(renewBefore: 300).ignoresRenewBefore(notBefore: 1000, notAfter: 1300))
        XCTAssertFalse(r.ignoresRenewBefore(notBefore: 1000, notAfter: 1300))
        XCTAssertEqual(r.renewAt(notBefore: 1000, notAfter: 1300, window: (1100, 1200), random: 0.5), 1150)
    }

    /// Nothing a CA sends (a past ARI window, an inverted or tiny validity) makes a
    /// certificate due again right after it was issued.
    func testAfterAnIssuanceTheNextRenewalIsNeverImmediate() {
        let r = AcmeRenewal()
        let now = 1_000_000
        XCTAssertEqual(r.afterIssuance(now: now, notBefore: now, notAfter: now - 10, random: 0.5), now + 3600)
        XCTAssertEqual(r.afterIssuance(now: now, notBefore: now, notAfter: now + 60, random: 0.5), now + 3600)
        XCTAssertEqual(r.afterIssuance(now: now, notBefore: now, notAfter: now + 90 * 86400, window: (now - 200, now - 100), random: 0.5),
                       now + 9 * 86400)
        XCTAssertEqual(AcmeRenewal(renewBefore: 10 * 86400).afterIssuance(now: now, notBefore: now, notAfter: now + 90 * 86400, random: 0),
                       now + 80 * 86400, "a sensible schedule is kept")
    }

    func testAnARIPollMovesTheRenewalIntoTheWindowOrToNow() {
        let r = AcmeRenewal()
        XCTAssertEqual(r.afterARIPoll(current: 5000, now: 1000, window: nil, random: 0.5), 5000, "no window: unchanged")
        XCTAssertEqual(r.afterARIPoll(current: 5000, now: 1000, window: (2000, 3000), random: 0.5), 2500)
        XCTAssertEqual(r.afterARIPoll(current: 5000, now: 1000, window: (100, 200), random: 0.5), 1000, "a past window: now")
        XCTAssertEqual(r.afterARIPoll(current: 5000, now: 1000, window: (300, 200), random: 0.5), 5000, "an inverted window is ignored")
    }

    func testRetryAfterAndRateLimitedLengthenTheBackoff() {
        let r = AcmeRenewal()
        XCTAssertEqual(r.retryDelay(failures: 1, random: 0, retryAfter: nil, problemType: nil), 30)
        XCTAssertEqual(r.retryDelay(failures: 1, random: 0, retryAfter: 600, problemType: nil), 600)
        XCTAssertEqual(r.retryDelay(failures: 1, random: 0, retryAfter: 5, problemType: nil), 30, "never shorter than the backoff")
        XCTAssertEqual(r.retryDelay(failures: 1, random: 0, retryAfter: nil, problemType: "urn:ietf:params:acme:error:rateLimited"), 3600)
        XCTAssertEqual(r.retryDelay(failures: 1, random: 0, retryAfter: 7200, problemType: "urn:ietf:params:acme:error:rateLimited"), 7200)
    }

    func testTheFailureRecordSurvivesARoundTripAndRefusesGarbage() {
        let record = AcmeFailureRecord(directory: "https://ca.test/dir", failures: 3, nextAttempt: 1_800_000_000,
                                       lastFailure: 1_799_999_000, lastError: "rateLimited: too many\nsecond line")
        let back = AcmeFailureRecord(text: record.text)
        XCTAssertEqual(back?.failures, 3)
        XCTAssertEqual(back?.nextAttempt, 1_800_000_000)
        XCTAssertEqual(back?.directory, "https://ca.test/dir")
        XCTAssertEqual(back?.lastError, "rateLimited: too many second line")
        XCTAssertEqual(AcmeFailureRecord(text: AcmeFailureRecord(directory: "https://ca.test/dir").text), AcmeFailureRecord(directory: "https://ca.test/dir"))
        XCTAssertNil(AcmeFailureRecord(text: ""))
        XCTAssertNil(AcmeFailureRecord(text: "directory x\nfailures -1\nnext_attempt 5\n"))
        XCTAssertNil(AcmeFailureRecord(text: "directory x\nfailures 99999999999999999999999\nnext_attempt 5\n"))
    }

    func testRetriesDoubleUpToTheCapWithJitterInTheUpperHalf() {
        let r = AcmeRenewal()
        XCTAssertEqual(r.retryDelay(failures: 1, random: 0), 30)
        XCTAssertEqual(r.retryDelay(failures: 1, random: 0.999_999), 59)
        XCTAssertEqual(r.retryDelay(failures: 3, random: 0), 120)
        XCTAssertEqual(r.retryDelay(failures: 40, random: 0), 3 * 3600)
        XCTAssertLessThanOrEqual(r.retryDelay(failures: 40, random: 0.999_999), 6 * 3600)
    }
}

final class AcmeChallengeInputTests: XCTestCase {
    func testOnlyBase64URLTokensAreChallengeRequests() {
        let token = String(repeating: "aZ0-_", count: 8)
        XCTAssertEqual(AcmeChallengePath.token(inPath: "/.well-known/acme-challenge/" + token), token)
        for hostile in [
            "/.well-known/acme-challenge/", "/.well-known/acme-challenge/../etc/passwd", "/.well-known/acme-challenge/a/b",
            "/.well-known/acme-challenge/a%2Fb", "/.well-known/acme-challenge/a?x=1", "/.well-known/acme-challenge/a.b",
            "/.well-known/acme-challenge/" + String(repeating: "a", count: 129), "/.well-known/acme-challengeX/a", "/a",
        ] {
            XCTAssertNil(AcmeChallengePath.token(inPath: hostile), hostile)
        }
    }

    private func alpn(_ names: [String]) -> [UInt8] {
        let list = names.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        return [UInt8(list.count >> 8), UInt8(list.count & 0xFF)] + list
    }

    func testTheValidationHandshakeOffersAcmeTLSAlone() {
        XCTAssertTrue(AcmeALPNOffer.onlyACME(alpnExtension: alpn(["acme-tls/1"])))
        XCTAssertFalse(AcmeALPNOffer.onlyACME(alpnExtension: alpn(["acme-tls/1", "h2"])))
        XCTAssertFalse(AcmeALPNOffer.onlyACME(alpnExtension: alpn(["h2"])))
        XCTAssertFalse(AcmeALPNOffer.onlyACME(alpnExtension: [0, 12, 10] + Array("acme-tls/1".utf8)), "length mismatch")
        XCTAssertFalse(AcmeALPNOffer.onlyACME(alpnExtension: [0, 12, 20] + Array("acme-tls/1".utf8) + [0]), "overrun")
        XCTAssertFalse(AcmeALPNOffer.onlyACME(alpnExtension: []))
    }

    func testServerNameExtension() {
        let name = Array("A.Example.com".utf8)
        let entry: [UInt8] = [0, 0, UInt8(name.count)] + name
        XCTAssertEqual(AcmeALPNOffer.serverName(extension: [0, UInt8(entry.count)] + entry), "a.example.com")
        XCTAssertNil(AcmeALPNOffer.serverName(extension: [0, UInt8(entry.count + 1)] + entry))
        XCTAssertNil(AcmeALPNOffer.serverName(extension: [0, 4, 0, 0, 9, 0x61]))
        XCTAssertNil(AcmeALPNOffer.serverName(extension: [0, 4, 0, 0, 1, 0x00]))
    }
}
