import Protocol
import XCTest

/// `basic_auth` / `forward_auth` keys of `[[policy]]`, the step a request takes, and the
/// in-flight caps of the checks.
final class PolicyAuthConfigTests: XCTestCase {
    static let bcrypt = "$2y$05$XWcsEGte6qpeSFLQjPkcTuLuJ1D9AsF3TvblfF2NBEX8cFSGS8wRC"

    private func fixture(_ files: [String: String]) -> GatewayConfigFixture {
        GatewayConfigFixture(base: GatewayConfigFixture.minimal.replacingOccurrences(
            of: "token = \"0123456789abcdef0123\"\n", with: "token = \"0123456789abcdef0123\"\nallow_ports = [2222]\n"), files: files)
    }

    private func parse(_ text: String, files: [String: String] = [:]) -> Result<GatewayConfig, ConfigError> {
        fixture(files).parse(text)
    }

    private func errors(_ text: String, files: [String: String] = [:]) -> [String] {
        fixture(files).errors(text)
    }

    func testBasicAuthReadsTheHtpasswdFileRelativeToTheConfig() throws {
        let c = try parse("""
            [[policy]]
            name = "staging"
            basic_auth = "users.htpasswd"
            realm = "Staging"
            """, files: ["/etc/fastgw/users.htpasswd": "# team\nalice:\(Self.bcrypt)\n"]).get()
        let rule = try XCTUnwrap(c.policy(named: "staging")?.basicAuth)
        XCTAssertEqual(rule.path, "/etc/fastgw/users.htpasswd")
        XCTAssertEqual(rule.realm, "Staging")
        XCTAssertEqual(rule.users?.count, 1)
        XCTAssertEqual(rule.users?.entry(for: "alice")?.scheme, .bcrypt)
        XCTAssertTrue(c.policy(named: "staging")!.authenticates)
    }

    func testForwardAuthKeysAreRead() throws {
        let c = try parse("""
            [[policy]]
            name = "sso"
            forward_auth = "http://127.0.0.1:4180/oauth2/auth"
            forward_auth_headers = ["X-Auth-Request-User", "X-Auth-Request-Email"]
            forward_auth_timeout = "2s"
            """).get()
        let rule = try XCTUnwrap(c.policy(named: "sso")?.forwardAuth)
        XCTAssertEqual(rule.target.host, "127.0.0.1")
        XCTAssertEqual(rule.target.port, 4180)
        XCTAssertEqual(rule.target.path, "/oauth2/auth")
        XCTAssertEqual(rule.copy, ["X-Auth-Request-User", "X-Auth-Request-Email"])
        XCTAssertEqual(rule.timeout, .seconds(2))
        let defaults = try parse("[[policy]]\nname = \"sso\"\nforward_auth = \"http://auth.internal/check\"\n").get()
        XCTAssertEqual(defaults.policies[0].forwardAuth?.timeout, ForwardAuthRule.defaultTimeout)
        XCTAssertEqual(defaults.policies[0].forwardAuth?.target.port, 80)
    }

    func testHtpasswdMistakesNameTheirFileAndLine() {
        XCTAssertEqual(errors("""
            [[policy]]
            name = "staging"
            basic_auth = "/srv/users"
            """, files: ["/srv/users": "alice:\(Self.bcrypt)\nbob:{SHA}abc\n"]), [
            "/etc/fastgw/gateway.toml:10: policy \"staging\": basic_auth /srv/users: 1 invalid line (listed below)",
            "/srv/users:2: user \"bob\": unsalted SHA-1 ({SHA}) hashes are not accepted; supported are bcrypt (htpasswd -B FILE USER) and SHA-512-crypt (mkpasswd -m sha-512)",
        ])
        XCTAssertEqual(errors("[[policy]]\nname = \"s\"\nbasic_auth = \"/missing\"\n"), [
            "/etc/fastgw/gateway.toml:10: policy \"s\": basic_auth /missing: cannot read: No such file or directory",
        ])
        XCTAssertEqual(errors("[[policy]]\nname = \"s\"\nbasic_auth = \"/empty\"\n", files: ["/empty": "# nobody\n"]), [
            "/etc/fastgw/gateway.toml:10: policy \"s\": basic_auth /empty: has no user entries",
        ])
    }

    func testMistakesAreErrorsWithTheirLine() {
        XCTAssertEqual(errors("""
            [[policy]]
            name = "both"
            basic_auth = "/u"
            forward_auth = "http://127.0.0.1:4180/auth"
            [[policy]]
            name = "f"
            forward_auth = "https://auth.example.com/check"
            forward_auth_headers = ["Transfer-Encoding", "X-Forwarded-User", "fastgw-service", "bad name", "X-User", "x-user"]
            forward_auth_timeout = "90s"
            [[policy]]
            name = "r"
            deny = ["10.0.0.0/8"]
            realm = "x"
            forward_auth_timeout = "1s"
            [[policy]]
            name = "q"
            basic_auth = "/u"
            realm = "bad\\u0001realm"
            """, files: ["/u": "alice:\(Self.bcrypt)\n"]), [
            "/etc/fastgw/gateway.toml:11: policy \"both\": a policy takes basic_auth or forward_auth, not both; attach two policies to ask for both",
            "/etc/fastgw/gateway.toml:14: policy \"f\": https forward_auth is not supported yet; use http:// on a private address",
            "/etc/fastgw/gateway.toml:15: policy \"f\": forward_auth_headers: Transfer-Encoding describes the connection or the message framing and cannot be copied",
            "/etc/fastgw/gateway.toml:15: policy \"f\": forward_auth_headers: X-Forwarded-User is set by the gateway itself and cannot be copied",
            "/etc/fastgw/gateway.toml:15: policy \"f\": forward_auth_headers: fastgw-service is set by the gateway itself and cannot be copied",
            "/etc/fastgw/gateway.toml:15: policy \"f\": forward_auth_headers: \"bad name\" is not a header field name",
            "/etc/fastgw/gateway.toml:15: policy \"f\": forward_auth_headers names one field twice",
            "/etc/fastgw/gateway.toml:16: policy \"f\": forward_auth_timeout must be between 100ms and 60s",
            "/etc/fastgw/gateway.toml:20: policy \"r\": realm applies to basic_auth",
            "/etc/fastgw/gateway.toml:21: policy \"r\": forward_auth_timeout applies to forward_auth",
            "/etc/fastgw/gateway.toml:25: policy \"q\": realm must not contain control characters",
        ])
    }

    func testAuthenticatingPoliciesCannotGuardTCPAttachments() {
        XCTAssertEqual(errors("""
            [[policy]]
            name = "sso"
            forward_auth = "http://127.0.0.1:4180/auth"
            [[listener]]
            name = "raw"
            listen = "0.0.0.0:9000"
            policy = "sso"
            [[listener]]
            name = "web"
            protocol = "http"
            listen = "0.0.0.0:80"
            policy = "sso"
            [[route_policy]]
            ports = [2222]
            policy = "sso"
            """), [
            "/etc/fastgw/gateway.toml:22: route_policy: policy \"sso\" has forward_auth, which ports cannot use: TCP connections carry no HTTP credentials",
            "/etc/fastgw/gateway.toml:14: listener \"raw\": policy \"sso\" has forward_auth, which a tcp listener cannot use: TCP connections carry no HTTP credentials",
        ])
    }
}

final class AuthStepTests: XCTestCase {
    private func policy(basic realm: String = "r") throws -> AccessPolicy {
        var p = AccessPolicy(name: "p")
        let users = try Htpasswd.parse(Array("alice:\(PolicyAuthConfigTests.bcrypt)\n".utf8), file: "u").get()
        p.basicAuth = BasicAuthRule(path: "u", realm: realm, users: users)
        return p
    }

    func testBasicAuthVerifiesExactlyOneWellFormedValue() throws {
        let p = try policy()
        let good = "Basic " + "alice:secret".base64
        guard case .verify(let c, _) = p.authStep(authorization: [good]) else { return XCTFail("not verified") }
        XCTAssertEqual(c, BasicCredentials(user: "alice", password: "secret"))
        XCTAssertEqual(p.authStep(authorization: []), .challenge(realm: "r"))
        XCTAssertEqual(p.authStep(authorization: [good, good]), .challenge(realm: "r"))
        XCTAssertEqual(p.authStep(authorization: ["Bearer abc"]), .challenge(realm: "r"))
        XCTAssertEqual(p.authStep(authorization: ["Basic !!!!"]), .challenge(realm: "r"))
    }

    func testAnUncheckedHtpasswdChallengesEveryone() {
        var p = AccessPolicy(name: "p")
        p.basicAuth = BasicAuthRule(path: "credential:users", users: nil)
        XCTAssertEqual(p.authStep(authorization: ["Basic " + "alice:secret".base64]), .challenge(realm: "fastgw"))
    }

    func testForwardAuthAsksAndOtherPoliciesPass() throws {
        var p = AccessPolicy(name: "p")
        XCTAssertEqual(p.authStep(authorization: []), .none)
        XCTAssertFalse(p.authenticates)
        let rule = ForwardAuthRule(target: try ForwardAuthTarget.parse("http://127.0.0.1:4180/auth").get())
        p.forwardAuth = rule
        XCTAssertEqual(p.authStep(authorization: []), .ask(rule))
    }

    func testCopyProblems() {
        XCTAssertNil(ForwardAuthRule.copyProblem("X-Auth-Request-User"))
        XCTAssertNil(ForwardAuthRule.copyProblem("Remote-User"))
        for name in ["Host", "Content-Length", "connection", "Upgrade", "X-Real-IP", "Forwarded", "", ":path"] {
            XCTAssertNotNil(ForwardAuthRule.copyProblem(name), name)
        }
    }
}

final class InFlightLimitTests: XCTestCase {
    func testOneClientCannotTakeEverySlot() {
        var limit = InFlightLimit<Int>(total: 3, perKey: 2)
        XCTAssertNil(limit.take(1))
        XCTAssertNil(limit.take(1))
        XCTAssertEqual(limit.take(1), .perKey)
        XCTAssertNil(limit.take(2))
        XCTAssertEqual(limit.take(3), .total)
        XCTAssertEqual(limit.inFlight, 3)
        limit.release(1)
        XCTAssertNil(limit.take(3))
        XCTAssertEqual(limit.keys, 3)
        limit.release(1)
        limit.release(2)
        limit.release(3)
        XCTAssertEqual(limit.keys, 0)
        XCTAssertEqual(limit.inFlight, 0)
    }

    func testWorkWithoutAKeyCountsInTheTotalOnly() {
        var limit = InFlightLimit<Int>(total: 2, perKey: 1)
        XCTAssertNil(limit.take(nil))
        XCTAssertNil(limit.take(nil))
        XCTAssertEqual(limit.take(nil), .total)
        XCTAssertEqual(limit.keys, 0)
    }
}

private extension String {
    var base64: String { Data(utf8).base64EncodedString() }
}
