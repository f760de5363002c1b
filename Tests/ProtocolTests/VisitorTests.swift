import Protocol
import XCTest

final class NetworkAllowTests: XCTestCase {
    private func allow(_ rules: [String]) throws -> NetworkAllow {
        NetworkAllow(rules: try rules.map { try NetworkAllow.parseRule($0).get() })
    }

    func testBroadBlocksDoNotReachTheAgentsOwnAddresses() throws {
        let any = try allow(["0.0.0.0/0:1-65535", "[::/0]:1-65535"])
        for text in ["127.0.0.1", "0.0.0.0", "169.254.169.254", "224.0.0.1", "::1", "::", "fe80::1", "::ffff:127.0.0.1"] {
            XCTAssertFalse(any.permits(IPAddress(text)!, port: 80), text)
        }
        XCTAssertTrue(any.permits(IPAddress("10.1.2.3")!, port: 80))
        XCTAssertTrue(any.permits(IPAddress("2001:db8::1")!, port: 80))
        // A rule naming the range (or a part of it) opens it.
        let local = try allow(["127.0.0.1:5432", "169.254.0.0/16:80"])
        XCTAssertTrue(local.permits(IPAddress("127.0.0.1")!, port: 5432))
        XCTAssertTrue(local.permits(IPAddress("169.254.169.254")!, port: 80))
        // A name rule's host resolved into a guarded range: refused, but for localhost itself.
        let names = try allow(["*.corp.internal:443", "localhost:5432"])
        XCTAssertFalse(names.permitsResolved(IPAddress("127.0.0.1")!, port: 443, name: "evil.corp.internal"))
        XCTAssertTrue(names.permitsResolved(IPAddress("10.0.0.5")!, port: 443, name: "db.corp.internal"))
        XCTAssertTrue(names.permitsResolved(IPAddress("127.0.0.1")!, port: 5432, name: "localhost"))
        XCTAssertTrue(names.permitsResolved(IPAddress("::1")!, port: 5432, name: "LOCALHOST."))
    }

    func testParsesBlocksNamesPortsAndRanges() throws {
        let a = try allow(["10.0.0.0/8:22", "db.internal:5432", "[2001:db8::1]:443", "[2001:db8::/32]:8000-8100",
                           "*.corp.internal:443", "1password.internal:80", "192.0.2.7:1-65535"])
        XCTAssertEqual(a.rules.map(\.description), ["10.0.0.0/8:22", "db.internal:5432", "[2001:db8::1/128]:443",
                                                    "[2001:db8::/32]:8000-8100", "*.corp.internal:443",
                                                    "1password.internal:80", "192.0.2.7/32:1-65535"])
    }

    func testRefusesRulesWithoutPortsOrWithNonsense() {
        for text in ["10.0.0.0/8", "db.internal", "10.0.0.1/8:22", "2001:db8::1:443", "[2001:db8::1]443", "db.internal:0",
                     "db.internal:70000", "db.internal:100-90", "db.internal:x", "bad_name:22", "-x.internal:22", "*:22",
                     "a.*.b:22", ":22", "10.0.0.0/33:22", "db.internal:22-", "999.1.1.1:22"] {
            XCTAssertThrowsError(try NetworkAllow.parseRule(text).get(), text)
        }
    }

    func testAddressesNeedABlockAndThePort() throws {
        let a = try allow(["10.0.0.0/8:22", "[2001:db8::/32]:443", "192.0.2.0/24:8000-8100"])
        XCTAssertTrue(a.permits(IPAddress("10.1.2.3")!, port: 22))
        XCTAssertFalse(a.permits(IPAddress("10.1.2.3")!, port: 23))
        XCTAssertFalse(a.permits(IPAddress("11.1.2.3")!, port: 22))
        XCTAssertTrue(a.permits(IPAddress("::ffff:10.0.0.1")!, port: 22), "an IPv4-mapped address is its IPv4 address")
        XCTAssertTrue(a.permits(IPAddress("2001:db8::5")!, port: 443))
        XCTAssertFalse(a.permits(IPAddress("2001:db9::5")!, port: 443))
        XCTAssertTrue(a.permits(IPAddress("192.0.2.9")!, port: 8050))
        XCTAssertFalse(a.permits(IPAddress("192.0.2.9")!, port: 8101))
    }

    func testNamesMatchExactlyOrBelowAWildcardNeverByAddressText() throws {
        let a = try allow(["db.internal:5432", "*.corp.internal:443", "127.0.0.1:80"])
        XCTAssertTrue(a.permitsName("DB.Internal.", port: 5432))
        XCTAssertFalse(a.permitsName("db.internal", port: 5433))
        XCTAssertFalse(a.permitsName("xdb.internal", port: 5432))
        XCTAssertTrue(a.permitsName("git.corp.internal", port: 443))
        XCTAssertFalse(a.permitsName("corp.internal", port: 443), "*.suffix is below the suffix only")
        XCTAssertFalse(a.permitsName("evilcorp.internal", port: 443))
        XCTAssertFalse(a.permitsName("127.0.0.1", port: 80), "an address is not a name: it needs a block")
        XCTAssertTrue(a.mayPermit(host: "127.0.0.1", port: 80))
        // A name no name rule covers may still resolve into a block: it is resolved and checked.
        XCTAssertTrue(a.mayPermit(host: "other.example", port: 80))
        XCTAssertFalse(a.mayPermit(host: "other.example", port: 81))
        XCTAssertFalse(try allow(["db.internal:5432"]).mayPermit(host: "other.example", port: 5432))
    }
}

final class Socks5ServerTests: XCTestCase {
    private let connectDomain: [UInt8] = [5, 1, 0, 3, 9] + Array("db.fastgw".utf8) + [0x15, 0x38]

    func testNoAuthConnectInPiecesWithEarlyBytes() {
        var s = Socks5Server()
        XCTAssertEqual(s.feed([5]), .needMore(send: []))
        XCTAssertEqual(s.feed([1, 0]), .needMore(send: [5, 0]))
        let bytes = connectDomain + [0xAA]
        XCTAssertEqual(s.feed(bytes.prefix(6)), .needMore(send: []))
        XCTAssertEqual(s.feed(bytes.dropFirst(6)),
                       .request(.init(host: "db.fastgw", port: 5432, isDomain: true), send: [], rest: [0xAA]))
    }

    func testAddressRequestsAndPipelinedGreeting() {
        var s = Socks5Server()
        let v4: [UInt8] = [5, 1, 0, 1, 10, 0, 0, 5, 0, 22]
        XCTAssertEqual(s.feed([5, 2, 2, 0] + v4), .request(.init(host: "10.0.0.5", port: 22, isDomain: false), send: [5, 0], rest: []))
        var t = Socks5Server()
        let v6: [UInt8] = [5, 1, 0, 4] + [0x20, 1, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1, 1, 0xbb]
        XCTAssertEqual(t.feed([5, 1, 0] + v6), .request(.init(host: "2001:db8::1", port: 443, isDomain: false), send: [5, 0], rest: []))
    }

    func testUserPassword() {
        let users = ["carol": Array("s3cret".utf8)]
        var ok = Socks5Server(users: users)
        let auth: [UInt8] = [1, 5] + Array("carol".utf8) + [6] + Array("s3cret".utf8)
        XCTAssertEqual(ok.feed([5, 1, 2]), .needMore(send: [5, 2]))
        XCTAssertEqual(ok.feed(auth + connectDomain), .request(.init(host: "db.fastgw", port: 5432, isDomain: true), send: [1, 0], rest: []))
        var wrong = Socks5Server(users: users)
        let bad: [UInt8] = [1, 5] + Array("carol".utf8) + [5] + Array("wrong".utf8)
        guard case .refused(let send, _) = wrong.feed([5, 1, 2] + bad) else { return XCTFail() }
        XCTAssertEqual(send, [5, 2, 1, 1])
        var noAuthOffered = Socks5Server(users: users)
        guard case .refused(let send2, _) = noAuthOffered.feed([5, 1, 0]) else { return XCTFail() }
        XCTAssertEqual(send2, [5, 0xff])
        var huge = Socks5Server(users: users)
        let longest: [UInt8] = [1, 255] + [UInt8](repeating: 0x75, count: 255) + [255] + [UInt8](repeating: 0x70, count: 255)
        guard case .refused(let send3, _) = huge.feed([5, 1, 2] + longest) else { return XCTFail() }
        XCTAssertEqual(send3, [5, 2, 1, 1])
        // Blocked after the greeting: the right password is then refused without a check.
        var blocked = Socks5Server(users: users)
        XCTAssertEqual(blocked.feed([5, 1, 2]), .needMore(send: [5, 2]))
        blocked.refuseAllCredentials()
        XCTAssertEqual(blocked.feed(auth), .refused(send: [1, 1], reason: Socks5Server.wrongCredentials))
    }

    func testRefusals() {
        func refused(_ bytes: [UInt8], users: [String: [UInt8]]? = nil) -> [UInt8]? {
            var s = Socks5Server(users: users)
            if case .refused(let send, _) = s.feed(bytes) { return send }
            return nil
        }
        XCTAssertEqual(refused([4, 1, 0]), [], "SOCKS4 gets no answer")
        XCTAssertEqual(refused([0x47, 0x45, 0x54, 0x20]), [])
        XCTAssertEqual(refused([5, 1, 2]), [5, 0xff], "no-auth server, client offers only user/password")
        XCTAssertEqual(refused([5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80]), [5, 0] + Socks5Server.reply(.commandNotSupported), "BIND")
        XCTAssertEqual(refused([5, 1, 0, 5, 1, 0, 9, 1]), [5, 0] + Socks5Server.reply(.addressTypeNotSupported))
        XCTAssertEqual(refused([5, 1, 0, 5, 1, 0, 1, 1, 2, 3, 4, 0, 0]), [5, 0] + Socks5Server.reply(.hostUnreachable), "port 0")
        XCTAssertEqual(refused([5, 1, 0, 5, 1, 0, 3, 0, 0, 80]), [5, 0] + Socks5Server.reply(.hostUnreachable), "empty name")
    }

    func testBoundedWhateverTheClientSends() {
        var s = Socks5Server()
        // A greeting announcing 255 methods and sending them slowly stays within one message.
        XCTAssertEqual(s.feed([5, 255] + [UInt8](repeating: 1, count: 200)), .needMore(send: []))
        var t = Socks5Server()
        for _ in 0..<1000 {
            if case .refused = t.feed([5]) { return }
        }
        XCTFail("a client sending byte after byte must be refused by the bounds or the protocol")
    }
}

final class VisitorDestinationTests: XCTestCase {
    func testServicesNetworkAndRefusals() {
        func d(_ host: String, _ port: Int = 80, domain: Bool = true, network: String? = "corpnet") -> VisitorDestination {
            VisitorDestination.decide(.init(host: host, port: port, isDomain: domain), network: network)
        }
        XCTAssertEqual(d("db.fastgw"), .service("db"))
        XCTAssertEqual(d("DB.FASTGW."), .service("db"))
        XCTAssertEqual(d("db"), .service("db"))
        XCTAssertEqual(d("git.corp.internal", 22), .network(service: "corpnet", target: "git.corp.internal:22"))
        XCTAssertEqual(d("10.0.0.5", 22, domain: false), .network(service: "corpnet", target: "10.0.0.5:22"))
        XCTAssertEqual(d("2001:db8::1", 443, domain: false), .network(service: "corpnet", target: "[2001:db8::1]:443"))
        if case .refused(let code, _) = d("10.0.0.5", 22, domain: false, network: nil) { XCTAssertEqual(code, .notAllowed) } else { XCTFail() }
        if case .refused(let code, _) = d("bad name.example") { XCTAssertEqual(code, .hostUnreachable) } else { XCTFail() }
        if case .refused(let code, _) = d("x y.fastgw") { XCTAssertEqual(code, .hostUnreachable) } else { XCTFail() }
    }
}

final class VisitorConfigTests: XCTestCase {
    private func parse(_ text: String, files: [String: String] = [:]) -> Result<VisitorConfig, ConfigError> {
        VisitorConfig.parse(text: text, file: "/etc/fastgw/visitor.toml") { path in
            guard let c = files[path] else { throw POSIXErrorStub(path: path) }
            return c
        }
    }

    private let head = """
        [visitor]
        name = "alice"
        token = "0123456789abcdef0123"
        gateways = ["gw.example.com:7443"]

        """

    func testForwardsSocksAndConnectionKeys() throws {
        let c = try parse(head.replacingOccurrences(of: "[visitor]\n", with: """
            [visitor]
            socks5 = "127.0.0.1:1080"
            socks5_network = "corpnet"
            socks5_users = "users"
            transport = "websocket"
            connections = 3

            """) + """
            [control]
            socket = "/run/v.sock"
            [[forward]]
            listen = "127.0.0.1:5432"
            service = "db"
            [[forward]]
            listen = "127.0.0.1:2222"
            service = "corpnet"
            target = "git.corp.internal:22"
            """, files: ["/etc/fastgw/users": "# users\ncarol:pw-1\n"]).get()
        XCTAssertEqual(c.name, "alice")
        XCTAssertEqual(c.connection.connections, 3)
        XCTAssertEqual(c.connection.transport, .websocket)
        XCTAssertEqual(c.controlSocket, "/run/v.sock")
        XCTAssertEqual(c.socks5, HostPort(host: "127.0.0.1", port: 1080))
        XCTAssertEqual(c.socks5Network, "corpnet")
        XCTAssertEqual(c.socks5Users, ["carol": Array("pw-1".utf8)])
        XCTAssertEqual(c.forwards.map(\.service), ["db", "corpnet"])
        XCTAssertEqual(c.forwards[1].target, "git.corp.internal:22")
        XCTAssertEqual(try parse(head + "[[forward]]\nlisten = \"127.0.0.1:1\"\nservice = \"db\"\n").get().controlSocket,
                       "/run/fastgw/visitor.sock")
    }

    func testErrorsNameTheirLines() {
        guard case .failure(let e) = parse(head + """
            [[forward]]
            listen = "127.0.0.1:5432"
            [[forward]]
            listen = "127.0.0.1:5432"
            service = "db"
            target = "nope"
            remote_port = 1
            """) else { return XCTFail() }
        let text = e.diagnostics.map(\.description).joined(separator: "\n")
        XCTAssertTrue(text.contains("visitor.toml:5: ") && text.contains("service is required"), text)
        XCTAssertTrue(text.contains("already a forward"), text)
        XCTAssertTrue(text.contains("target \"nope\""), text)
        XCTAssertTrue(text.contains("remote_port"), text)
        guard case .failure(let e2) = parse(head) else { return XCTFail() }
        XCTAssertTrue(e2.diagnostics.contains { $0.message.contains("nothing to listen on") })
        guard case .failure(let e3) = parse(head + "socks5_users = \"u\"\n[[forward]]\nlisten = \"127.0.0.1:1\"\nservice = \"db\"\n")
        else { return XCTFail() }
        XCTAssertTrue(e3.diagnostics.contains { $0.message.contains("cannot read socks5_users") }, "\(e3)")
    }

    func testSocksBeyondLoopbackNeedsUsersOrConsent() throws {
        let forward = "[[forward]]\nlisten = \"127.0.0.1:1\"\nservice = \"db\"\n"
        for host in ["127.0.0.2", "[::1]", "localhost"] {
            XCTAssertNoThrow(try parse(head + "socks5 = \"\(host):1080\"\n").get(), host)
        }
        for host in ["0.0.0.0", "192.0.2.1", "[::]", "vpn.example"] {
            guard case .failure(let e) = parse(head + "socks5 = \"\(host):1080\"\n" + forward) else { return XCTFail(host) }
            XCTAssertTrue(e.description.contains("visitor.toml:5: socks5 = ") && e.description.contains("beyond loopback without socks5_users"),
                          e.description)
        }
        let open = try parse(head + "socks5 = \"0.0.0.0:1080\"\nsocks5_unauthenticated = true\n").get()
        XCTAssertTrue(open.socks5Unauthenticated)
        XCTAssertNoThrow(try parse(head + "socks5 = \"0.0.0.0:1080\"\nsocks5_users = \"u\"\n", files: ["/etc/fastgw/u": "a:b\n"]).get())
        guard case .failure(let e) = parse(head + "socks5 = \"0.0.0.0:1080\"\nsocks5_users = \"u\"\nsocks5_unauthenticated = true\n",
                                           files: ["/etc/fastgw/u": "a:b\n"]) else { return XCTFail() }
        XCTAssertTrue(e.description.contains("contradicts socks5_users"), e.description)
    }

    func testUsersFile() {
        XCTAssertEqual(try Socks5Users.parse("a:b\r\n\n# c\nd:e:f\n").get(), ["a": [0x62], "d": Array("e:f".utf8)])
        for bad in ["", "nocolon\n", ":pw\n", "a:\n", "a:1\na:2\n"] {
            XCTAssertThrowsError(try Socks5Users.parse(bad).get(), bad)
        }
    }
}

final class PrivateServiceConfigTests: XCTestCase {
    private func agent(_ services: String) -> Result<AgentConfig, ConfigError> {
        AgentConfig.parse(text: """
            [agent]
            name = "office"
            token = "0123456789abcdef0123"
            gateways = ["gw:7443"]
            \(services)
            """, file: "agent.toml") { _ in throw POSIXErrorStub(path: "") }
    }

    func testPrivateAndNetworkServices() throws {
        let c = try agent("""
            [[service]]
            name = "db"
            upstream = "127.0.0.1:5432"
            expose = "private"
            [[service]]
            name = "corpnet"
            type = "network"
            allow = ["10.0.0.0/8:22", "db.internal:5432"]
            """).get()
        XCTAssertTrue(c.services[0].isPrivate)
        XCTAssertNil(c.services[0].remotePort)
        XCTAssertEqual(c.services[1].kind, .network)
        XCTAssertTrue(c.services[1].isPrivate, "a network service is always private")
        XCTAssertEqual(c.services[1].allow.rules.count, 2)
        XCTAssertEqual(ServiceDeclaration(c.services[1]).isPrivate, true)
        let round = try ControlMessage.decode(ControlMessage.register(c.services.map(ServiceDeclaration.init)).encoded().dropLast())
        XCTAssertEqual(round, .register(c.services.map(ServiceDeclaration.init)))
    }

    func testPrivateAndNetworkErrors() {
        func errors(_ s: String) -> String {
            guard case .failure(let e) = agent(s) else { return "accepted" }
            return e.diagnostics.map(\.description).joined(separator: "\n")
        }
        XCTAssertTrue(errors("[[service]]\nname = \"n\"\ntype = \"network\"\n").contains("allow is required"))
        XCTAssertTrue(errors("[[service]]\nname = \"n\"\ntype = \"network\"\nallow = []\n").contains("allow is empty"))
        XCTAssertTrue(errors("[[service]]\nname = \"n\"\ntype = \"network\"\nallow = [\"10.0.0.0/8\"]\n").contains("port"))
        XCTAssertTrue(errors("[[service]]\nname = \"n\"\ntype = \"network\"\nexpose = \"public\"\nallow = [\"10.0.0.0/8:1\"]\n")
            .contains("always private"))
        XCTAssertTrue(errors("[[service]]\nname = \"n\"\ntype = \"network\"\nupstream = \"a:1\"\nallow = [\"10.0.0.0/8:1\"]\n")
            .contains("no upstream"))
        XCTAssertTrue(errors("[[service]]\nname = \"d\"\nupstream = \"a:1\"\nexpose = \"private\"\nremote_port = 5\n")
            .contains("agent.toml:9: ") )
        XCTAssertTrue(errors("[[service]]\nname = \"d\"\nupstream = \"a:1\"\nremote_port = 5\nallow = [\"10.0.0.0/8:1\"]\n")
            .contains("allow applies to network services only"))
        XCTAssertTrue(errors("[[service]]\nname = \"h\"\ntype = \"http\"\nupstream = \"a:1\"\nhosts = [\"a.b\"]\nexpose = \"private\"\n")
            .contains("an http service is public"))
    }

    func testGatewayVisitorsAndAgentAllowServices() throws {
        let f = GatewayConfigFixture()
        let c = try f.parse("""
            allow_services = ["db"]
            [[visitor]]
            name = "alice"
            token_sha256 = "\(String(repeating: "ab", count: 32))"
            allow_services = ["db", "corpnet"]
            """).get()
        XCTAssertEqual(c.agents[0].allowServices, ["db"])
        XCTAssertEqual(c.visitors.map(\.name), ["alice"])
        XCTAssertEqual(c.visitors[0].allowServices, ["db", "corpnet"])
        XCTAssertTrue(f.errors("[[visitor]]\nname = \"v\"\ntoken = \"0123456789abcdef0123\"\nallow_services = [\"db\"]\n")
            .contains { $0.contains("share one token") })
        XCTAssertTrue(f.errors("[[visitor]]\nname = \"v\"\ntoken = \"fedcba98765432100123\"\n")
            .contains { $0.contains("allow_services is required") })
        XCTAssertTrue(f.errors("[[visitor]]\nname = \"v\"\ntoken = \"fedcba98765432100123\"\nallow_services = [\"a b\"]\n")
            .contains { $0.contains("is invalid") })
    }

    func testHandshakeTellsVisitorsFromAgents() {
        let agents = [GatewayConfig.AgentGrant(name: "office", token: "0123456789abcdef0123", allowPorts: [], allowHosts: [])]
        let visitors = [GatewayConfig.AgentGrant(name: "alice", token: "fedcba98765432100123", allowPorts: [], allowHosts: [])]
        func evaluate(_ head: HTTPHead) -> Result<TunnelHandshake.Accepted, TunnelHandshake.Rejection> {
            TunnelHandshake.evaluate(head, grants: agents, visitors: visitors, draining: false)
        }
        let v = TunnelHandshake.request(host: "gw", token: "fedcba98765432100123", agent: "alice", instance: "i", peer: .visitor)
        XCTAssertEqual(v["Fastgw-Visitor"], "alice")
        XCTAssertNil(v["Fastgw-Agent"])
        XCTAssertEqual(try evaluate(v).get().peer, .visitor)
        // A visitor's token does not make an agent, nor an agent's a visitor.
        let asAgent = TunnelHandshake.request(host: "gw", token: "fedcba98765432100123", agent: "alice", instance: "i")
        guard case .failure(let r) = evaluate(asAgent) else { return XCTFail() }
        XCTAssertEqual(r.status, 401)
        let agentAsVisitor = TunnelHandshake.request(host: "gw", token: "0123456789abcdef0123", agent: "office", instance: "i", peer: .visitor)
        guard case .failure(let r2) = evaluate(agentAsVisitor) else { return XCTFail() }
        XCTAssertEqual(r2.status, 401)
        XCTAssertTrue(r2.reason.contains("visitor"), r2.reason)
    }
}

final class ResolutionGateTests: XCTestCase {
    func testInFlightCapAndCache() {
        var limits = ResolutionGate<Int>.Limits()
        limits.maxInFlight = 2
        limits.cacheEntries = 2
        limits.cacheSeconds = 10
        var g = ResolutionGate<Int>(limits: limits)
        guard case .lookUp = g.admit("a", now: 0), case .lookUp = g.admit("b", now: 0) else { return XCTFail() }
        guard case .busy = g.admit("c", now: 0) else { return XCTFail("over the cap") }
        g.finished("a", value: 1, now: 1)
        g.finished("b", value: nil, now: 1)
        XCTAssertEqual(g.inFlight, 0)
        guard case .cached(1) = g.admit("a", now: 10.9) else { return XCTFail("cached") }
        // A failure is cached briefly (5 s); an answer expires.
        guard case .failedRecently = g.admit("b", now: 5.9) else { return XCTFail("failure cached") }
        guard case .lookUp = g.admit("b", now: 6.1), case .lookUp = g.admit("a", now: 11) else { return XCTFail() }
        XCTAssertEqual(g.inFlight, 2)
        // An abandoned lookup frees its slot and caches nothing.
        g.abandoned()
        guard case .lookUp = g.admit("c", now: 12) else { return XCTFail("slot freed") }
    }

    func testConfiguredNamesHaveCapacityOfTheirOwn() {
        var limits = ResolutionGate<Int>.Limits()
        limits.maxInFlight = 2
        limits.maxConfiguredInFlight = 1
        var g = ResolutionGate<Int>(limits: limits)
        guard case .lookUp = g.admit("v1", now: 0), case .lookUp = g.admit("v2", now: 0),
              case .busy = g.admit("v3", now: 0) else { return XCTFail("visitor names capped") }
        guard case .lookUp = g.admit("upstream", from: .configured, now: 0) else { return XCTFail("not starved") }
        guard case .busy = g.admit("upstream2", from: .configured, now: 0) else { return XCTFail("configured capped") }
        g.finished("upstream", from: .configured, value: 7, now: 1)
        XCTAssertEqual(g.configuredInFlight, 0)
        XCTAssertEqual(g.inFlight, 2)
        guard case .cached(7) = g.admit("upstream", from: .configured, now: 2) else { return XCTFail() }
    }
}
