@testable import Protocol
import XCTest

/// The pure half of mTLS on the tunnel: whether a presented certificate names an agent, how
/// the handshake combines it with the token, and the `[[agent]]` / `[tunnel]` keys.
final class CertificateIdentityTests: XCTestCase {
    private let pin = SHA256.hash("leaf".utf8)

    private func certificate(_ verification: PeerCertificate.Verification = .valid, cn: [String] = ["nas"],
                             dns: [String] = ["nas.agents.example"], uris: [String] = ["spiffe://example/agent/nas"]) -> PeerCertificate {
        PeerCertificate(verification: verification, commonNames: cn, dnsNames: dns, uris: uris, sha256: pin, chainDER: [[1, 2, 3]])
    }

    private func code(_ c: PeerCertificate?, _ match: CertificateMatch) -> CertificateRefusal.Code? {
        CertificateIdentity.check(c, agent: "nas", match: match)?.code
    }

    func testAValidCertificateNamesItsAgentByCommonNameDNSOrURI() {
        XCTAssertNil(code(certificate(), .subject("nas")))
        XCTAssertNil(code(certificate(), .subject("NAS.Agents.Example")), "DNS names compare without case")
        XCTAssertNil(code(certificate(), .subject("spiffe://example/agent/nas")))
        XCTAssertEqual(code(certificate(), .subject("Nas")), .subjectMismatch, "a common name compares exactly")
        XCTAssertEqual(code(certificate(), .subject("SPIFFE://example/agent/nas")), .subjectMismatch)
        XCTAssertEqual(code(certificate(dns: ["*.agents.example"]), .subject("x.agents.example")), .subjectMismatch,
                       "no wildcard expansion: a certificate names one agent")
        XCTAssertNil(code(certificate(), .sha256(pin)))
        XCTAssertEqual(code(certificate(), .sha256(SHA256.hash("other".utf8))), .pinMismatch)
    }

    func testEachVerificationFailureHasItsReasonBeforeAnyNameIsLookedAt() {
        XCTAssertEqual(code(nil, .subject("nas")), .noCertificate)
        XCTAssertEqual(code(certificate(.unknownCA), .subject("nas")), .unknownCA)
        XCTAssertEqual(code(certificate(.revoked), .sha256(pin)), .revoked, "a pin does not override revocation")
        XCTAssertEqual(code(certificate(.expired), .subject("nas")), .expired)
        XCTAssertEqual(code(certificate(.notYetValid), .subject("nas")), .notYetValid)
        let invalid = CertificateIdentity.check(certificate(.invalid("no CRL of its issuer in client_crl")), agent: "nas", match: .subject("nas"))
        XCTAssertEqual(invalid?.code, .invalid)
        XCTAssertEqual(invalid?.message, "client certificate of agent \"nas\" is not accepted: no CRL of its issuer in client_crl")
        XCTAssertEqual(invalid?.status, 401)
    }

    func testRefusalsSayWhatWasPresentedButNotWhatIsExpected() throws {
        let subject = try XCTUnwrap(CertificateIdentity.check(certificate(cn: ["lab"], dns: [], uris: []), agent: "nas", match: .subject("secret-name")))
        XCTAssertEqual(subject.status, 403)
        XCTAssertEqual(subject.message, "client certificate (CN=lab) does not name agent \"nas\"")
        XCTAssertFalse(subject.message.contains("secret-name"))
        let pinned = try XCTUnwrap(CertificateIdentity.check(certificate(), agent: "nas", match: .sha256(SHA256.hash("x".utf8))))
        XCTAssertTrue(pinned.message.hasSuffix("(presented sha256 \(Hex.encode(pin)))"), pinned.message)
        // Many names are shown bounded.
        let many = certificate(cn: [], dns: (0..<50).map { "n\($0).example" }, uris: [])
        let m = try XCTUnwrap(CertificateIdentity.check(many, agent: "nas", match: .subject("nas"))).message
        XCTAssertTrue(m.contains("… (50 names)"), m)
        XCTAssertLessThan(m.utf8.count, 400)
    }

    func testPinsAreHexOrColonSeparatedPairs() {
        let hex = Hex.encode(pin)
        XCTAssertEqual(CertificateIdentity.parsePin(hex), pin)
        XCTAssertEqual(CertificateIdentity.parsePin(hex.uppercased()), pin)
        let pairs = stride(from: 0, to: 64, by: 2).map { i in
            String(hex.uppercased()[hex.index(hex.startIndex, offsetBy: i)..<hex.index(hex.startIndex, offsetBy: i + 2)])
        }.joined(separator: ":")
        XCTAssertEqual(CertificateIdentity.parsePin(pairs), pin)
        XCTAssertNil(CertificateIdentity.parsePin(String(hex.dropLast())))
        XCTAssertNil(CertificateIdentity.parsePin(hex + "00"))
        XCTAssertNil(CertificateIdentity.parsePin(String(repeating: "g", count: 64)))
        XCTAssertNil(CertificateIdentity.parsePin(pairs.replacingOccurrences(of: ":", with: "-")))
        XCTAssertNil(CertificateIdentity.parsePin("A:" + String(pairs.dropFirst(3)) + "0"), "pairs must be pairs")
    }

    // MARK: the handshake

    private let token = "0123456789abcdef0123"
    private var grants: [GatewayConfig.AgentGrant] {
        [
            .init(name: "nas", token: "", allowPorts: [2222], allowHosts: [], auth: .certificate, certificate: .subject("nas")),
            .init(name: "lab", token: token, allowPorts: [5432], allowHosts: [], auth: .tokenAndCertificate, certificate: .sha256(pin)),
            .init(name: "web", token: "fedcba98765432100123", allowPorts: [8080], allowHosts: []),
        ]
    }

    private func evaluate(agent: String, bearer: String?, _ cert: PeerCertificate?, draining: Bool = false)
        -> Result<TunnelHandshake.Accepted, TunnelHandshake.Rejection> {
        let head = TunnelHandshake.request(host: "gw", token: bearer ?? "", agent: agent, instance: "i")
        var parser = HTTPHeadParser()
        guard case .complete(let parsed, _) = parser.feed(head.serialized()) else { fatalError("incomplete") }
        return TunnelHandshake.evaluate(parsed, grants: grants, draining: draining, certificate: cert)
    }

    private func refusal(_ r: Result<TunnelHandshake.Accepted, TunnelHandshake.Rejection>) -> (Int, CertificateRefusal.Code?)? {
        guard case .failure(let f) = r else { return nil }
        return (f.status, f.certificate)
    }

    func testAnAgentWithoutTokenIsIdentifiedByNameAndCertificate() throws {
        XCTAssertNil(TunnelHandshake.request(host: "gw", token: "", agent: "nas", instance: "i")["Authorization"])
        let accepted = try evaluate(agent: "nas", bearer: nil, certificate()).get()
        XCTAssertEqual(accepted.certificate, certificate())
        XCTAssertEqual(accepted.token, "")
        XCTAssertEqual(refusal(evaluate(agent: "nas", bearer: nil, nil))?.1, .noCertificate)
        XCTAssertEqual(refusal(evaluate(agent: "nas", bearer: nil, certificate(cn: ["lab"], dns: [], uris: [])))?.0, 403)
        // Draining is said only to an agent that proved who it is.
        XCTAssertEqual(refusal(evaluate(agent: "nas", bearer: nil, certificate(), draining: true))?.0, 503)
        XCTAssertEqual(refusal(evaluate(agent: "nas", bearer: nil, nil, draining: true))?.0, 401)
    }

    func testTokenAndCertificateNeedsBoth() {
        XCTAssertNotNil(try? evaluate(agent: "lab", bearer: token, certificate()).get())
        XCTAssertEqual(refusal(evaluate(agent: "lab", bearer: token, nil))?.1, .noCertificate)
        XCTAssertEqual(refusal(evaluate(agent: "lab", bearer: nil, certificate()))?.0, 401, "missing bearer token")
        XCTAssertEqual(refusal(evaluate(agent: "lab", bearer: "wrongwrongwrongwrong", certificate()))?.0, 401)
        var other = certificate()
        other.sha256 = SHA256.hash("other".utf8)
        XCTAssertEqual(refusal(evaluate(agent: "lab", bearer: token, other))?.1, .pinMismatch)
    }

    func testATokenGrantIgnoresWhateverCertificateCameAlong() {
        XCTAssertNotNil(try? evaluate(agent: "web", bearer: "fedcba98765432100123", certificate(.unknownCA)).get())
        // A certificate-only grant holds no token: an empty or any bearer does not pass as one.
        XCTAssertEqual(refusal(evaluate(agent: "web", bearer: nil, certificate()))?.0, 401)
        let empty = HTTPHead(startLine: ["GET", TunnelHandshake.path, "HTTP/1.1"], fields: [
            ("Authorization", "Bearer "), ("Fastgw-Agent", "nope"), ("Connection", "Upgrade"), ("Upgrade", "fastgw-h2"),
        ])
        guard case .failure(let r) = TunnelHandshake.evaluate(empty, grants: grants, draining: false, certificate: certificate()) else {
            return XCTFail("an empty bearer token was accepted")
        }
        XCTAssertEqual(r.status, 401)
    }

    func testAReloadRechecksTokenAndCertificate() {
        let nas = grants[0], lab = grants[1]
        XCTAssertNil(TunnelHandshake.recheck(("", certificate()), agent: "nas", grant: nas))
        XCTAssertEqual(TunnelHandshake.recheck(("", certificate(.revoked)), agent: "nas", grant: nas),
                       "client certificate of agent \"nas\" is revoked")
        XCTAssertNotNil(TunnelHandshake.recheck(("", nil), agent: "nas", grant: nas))
        XCTAssertNil(TunnelHandshake.recheck((token, certificate()), agent: "lab", grant: lab))
        XCTAssertEqual(TunnelHandshake.recheck(("old-token-old-token", certificate()), agent: "lab", grant: lab),
                       "token of agent \"lab\" changed")
        // A grant that now also wants a certificate closes a connection that came with a token only.
        var stricter = grants[2]
        stricter.auth = .tokenAndCertificate
        stricter.certificate = .subject("web")
        XCTAssertNotNil(TunnelHandshake.recheck(("fedcba98765432100123", nil), agent: "web", grant: stricter))
    }

    // MARK: configuration

    private func parse(tunnel: String = "client_ca = \"agents.pem\"", _ agent: String) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig.parse(text: """
        [tunnel]
        cert = "c.pem"
        key = "k.pem"
        \(tunnel)
        [[agent]]
        name = "nas"
        allow_ports = [2222]
        \(agent)
        """, file: "/etc/fastgw/gw.toml", readFile: { _ in "0123456789abcdef0123" })
    }

    private func errors(tunnel: String = "client_ca = \"agents.pem\"", _ agent: String) -> [String] {
        guard case .failure(let e) = parse(tunnel: tunnel, agent) else { return [] }
        return e.diagnostics.map(\.description)
    }

    func testCertificateKeysParse() throws {
        let c = try parse(tunnel: "client_ca = \"agents.pem\"\nclient_crl = \"/var/lib/ca/agents.crl\"",
                          "auth = \"certificate\"\ncertificate_subject = \"nas.agents.example\"").get()
        XCTAssertEqual(c.tunnel.clientCA, "/etc/fastgw/agents.pem", "relative to the config file")
        XCTAssertEqual(c.tunnel.clientCRL, "/var/lib/ca/agents.crl")
        XCTAssertEqual(c.agents[0].auth, .certificate)
        XCTAssertEqual(c.agents[0].certificate, .subject("nas.agents.example"))
        XCTAssertEqual(c.agents[0].token, "")
        XCTAssertFalse(c.agents[0].accepts([], presentedHash: SHA256.hash([])))

        let both = try parse("auth = \"token+certificate\"\ntoken_file = \"nas.token\"\ncertificate_sha256 = \"\(Hex.encode(pin).uppercased())\"").get()
        XCTAssertEqual(both.agents[0].auth, .tokenAndCertificate)
        XCTAssertEqual(both.agents[0].certificate, .sha256(pin))
        XCTAssertEqual(both.agents[0].token, "0123456789abcdef0123")

        let plain = try parse(tunnel: "", "token_file = \"nas.token\"").get()
        XCTAssertEqual(plain.agents[0].auth, .token, "token is the default")
        XCTAssertNil(plain.tunnel.clientCA)
    }

    func testTwoCertificateAgentsDoNotShareAToken() throws {
        let text = """
        [tunnel]
        cert = "c.pem"
        key = "k.pem"
        client_ca = "ca.pem"
        [[agent]]
        name = "a"
        auth = "certificate"
        certificate_subject = "a"
        [[agent]]
        name = "b"
        auth = "certificate"
        certificate_subject = "b"
        """
        XCTAssertEqual(try GatewayConfig.parse(text: text, file: "gw.toml", readFile: { _ in "" }).get().agents.count, 2)
    }

    func testBadCombinationsAreReportedOnTheirLine() {
        // Lines: [tunnel] 1, cert 2, key 3, tunnel extra 4, [[agent]] 5, name 6, allow_ports 7, then the agent's lines.
        XCTAssertEqual(errors("auth = \"certificate\""), [
            "/etc/fastgw/gw.toml:8: agent \"nas\": auth = \"certificate\" needs certificate_subject (a CN, DNS or URI name in the agent's certificate) or certificate_sha256 (a pin of it)",
        ])
        XCTAssertEqual(errors(tunnel: "", "auth = \"certificate\"\ncertificate_subject = \"nas\""), [
            "/etc/fastgw/gw.toml:8: agent \"nas\": auth = \"certificate\" needs [tunnel] client_ca (the CA bundle that issues agent certificates)",
        ])
        XCTAssertEqual(errors(tunnel: "client_crl = \"x.crl\"", "token_file = \"t\""), [
            "/etc/fastgw/gw.toml:4: client_crl needs client_ca (the CA bundle whose certificates the CRLs revoke)",
        ])
        XCTAssertTrue(errors("auth = \"certificate\"\ncertificate_subject = \"nas\"\ncertificate_sha256 = \"\(Hex.encode(pin))\"")
            .contains { $0.hasPrefix("/etc/fastgw/gw.toml:10:") && $0.contains("set one of certificate_subject and certificate_sha256") })
        XCTAssertTrue(errors("auth = \"certificate\"\ncertificate_sha256 = \"1234\"")
            .contains { $0.hasPrefix("/etc/fastgw/gw.toml:9:") && $0.contains("64 hex digits") })
        XCTAssertTrue(errors("auth = \"certificate\"\ncertificate_subject = \"\"")
            .contains { $0.hasPrefix("/etc/fastgw/gw.toml:9:") && $0.contains("1-255 characters") })
        let tokenToo = errors("auth = \"certificate\"\ncertificate_subject = \"nas\"\ntoken_sha256 = \"\(Hex.encode(pin))\"")
        XCTAssertEqual(tokenToo.count, 1, "\(tokenToo)")
        XCTAssertTrue(tokenToo[0].hasPrefix("/etc/fastgw/gw.toml:10:") && tokenToo[0].contains("token_sha256 is not used with auth = \"certificate\""), "\(tokenToo)")
        XCTAssertTrue(errors("token_file = \"t\"\ncertificate_subject = \"nas\"")
            .contains { $0.hasPrefix("/etc/fastgw/gw.toml:9:") && $0.contains("applies to auth = \"certificate\" or \"token+certificate\"") })
        XCTAssertTrue(errors("auth = \"token+certificate\"\ncertificate_subject = \"nas\"")
            .contains { $0.contains("token or token_file is required") })
        let unknown = errors("auth = \"password\"\ntoken_file = \"t\"")
        XCTAssertEqual(unknown.count, 1, "\(unknown)")
        XCTAssertTrue(unknown[0].hasPrefix("/etc/fastgw/gw.toml:8:") && unknown[0].contains("not one of: token, certificate, token+certificate"))
    }

    func testAnAgentWithACertificateMayGoWithoutToken() throws {
        let text = """
        [agent]
        name = "nas"
        gateways = ["gw.example.com:7443"]
        cert = "nas.crt"
        key = "nas.key"
        """
        let c = try AgentConfig.parse(text: text, file: "/etc/fastgw/agent.toml", readFile: { _ in "" }).get()
        XCTAssertEqual(c.token, "")
        XCTAssertEqual(c.clientCert, "/etc/fastgw/nas.crt")
        let noCert = AgentConfig.parse(text: "[agent]\nname = \"nas\"\ngateways = [\"gw:7443\"]\n", file: "a.toml", readFile: { _ in "" })
        guard case .failure(let e) = noCert else { return XCTFail("an agent with neither token nor certificate was accepted") }
        XCTAssertTrue(e.diagnostics.contains { $0.message.contains("token or token_file is required") })
    }
}
