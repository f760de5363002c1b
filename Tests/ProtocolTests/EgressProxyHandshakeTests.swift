import Protocol
import XCTest

/// The egress proxy handshake (issue #17 item 3), driven byte by byte without sockets,
/// including proxies that answer badly or with hostile sizes.
final class EgressProxyHandshakeTests: XCTestCase {
    private let gateway = HostPort(host: "gw.example.com", port: 7443)

    private func proxy(_ url: String) -> EgressProxy {
        try! EgressProxy.parse(url).get()
    }

    private func sent(_ step: EgressProxyHandshake.Step) -> [UInt8]? {
        if case .send(let bytes) = step { return bytes }
        return nil
    }

    private func failure(_ step: EgressProxyHandshake.Step) -> EgressProxyFailure? {
        if case .failed(let f) = step { return f }
        return nil
    }

    // MARK: HTTP CONNECT

    func testHTTPConnectRequestAndEarlyBytes() throws {
        var h = EgressProxyHandshake(proxy: proxy("http://127.0.0.1:3128"), gateway: gateway)
        let request = String(decoding: try XCTUnwrap(sent(h.start())), as: UTF8.self)
        XCTAssertTrue(request.hasPrefix("CONNECT gw.example.com:7443 HTTP/1.1\r\nHost: gw.example.com:7443\r\n"), request)
        XCTAssertFalse(request.contains("Proxy-Authorization"))
        XCTAssertTrue(request.hasSuffix("\r\n\r\n"))
        // The answer in pieces; what follows the head is the tunnel's first bytes.
        XCTAssertEqual(h.feed(Array("HTTP/1.1 200 Connection est".utf8)), .wait)
        XCTAssertEqual(h.feed(Array("ablished\r\n\r".utf8)), .wait)
        XCTAssertEqual(h.feed(Array("\n\u{16}\u{03}\u{03}".utf8)), .connected(early: [0x16, 0x03, 0x03]))
    }

    func testHTTPBasicCredentialsAndIPv6Authority() throws {
        let p = proxy("http://alice:p%40ss@[::1]:3128")
        XCTAssertEqual(p.credentials, ProxyCredentials(user: "alice", password: "p@ss"))
        var h = EgressProxyHandshake(proxy: p, gateway: HostPort(host: "2001:db8::1", port: 443))
        let request = String(decoding: try XCTUnwrap(sent(h.start())), as: UTF8.self)
        XCTAssertTrue(request.hasPrefix("CONNECT [2001:db8::1]:443 HTTP/1.1\r\n"), request)
        // base64("alice:p@ss")
        XCTAssertTrue(request.contains("Proxy-Authorization: Basic YWxpY2U6cEBzcw==\r\n"), request)
        XCTAssertEqual(BasicCredentials.parse("Basic YWxpY2U6cEBzcw=="), BasicCredentials(user: "alice", password: "p@ss"))
    }

    func testHTTP407NamesTheProxyAndTheStatus() throws {
        var h = EgressProxyHandshake(proxy: proxy("http://127.0.0.1:3128"), gateway: gateway)
        _ = h.start()
        let f = try XCTUnwrap(failure(h.feed(Array(
            "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 5\r\n\r\ndenied".utf8))))
        XCTAssertTrue(f.isAuthentication)
        XCTAssertTrue(f.description.hasPrefix("proxy 127.0.0.1:3128 answered 407 Proxy Authentication Required"), f.description)
        XCTAssertTrue(f.description.contains("set proxy_credentials"))
        // After a failure nothing more is read.
        XCTAssertEqual(h.feed([1, 2, 3]), .wait)

        var withCredentials = EgressProxyHandshake(proxy: proxy("http://u:secret@127.0.0.1:3128"), gateway: gateway)
        _ = withCredentials.start()
        let g = try XCTUnwrap(failure(withCredentials.feed(Array("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n".utf8))))
        XCTAssertTrue(g.description.contains("refused the user name and password"), g.description)
        XCTAssertFalse(g.description.contains("secret"))
    }

    func testHTTPRefusalsAndBrokenAnswers() throws {
        func answer(_ text: String) -> EgressProxyFailure? {
            var h = EgressProxyHandshake(proxy: proxy("http://proxy:3128"), gateway: gateway)
            _ = h.start()
            return failure(h.feed(Array(text.utf8)))
        }
        let forbidden = try XCTUnwrap(answer("HTTP/1.1 403 Forbidden\r\n\r\n"))
        XCTAssertEqual(forbidden.kind, .refused)
        XCTAssertEqual(forbidden.description, "proxy proxy:3128 answered 403 Forbidden to CONNECT gw.example.com:7443")
        // Control characters in the reason phrase do not reach the log.
        XCTAssertEqual(answer("HTTP/1.1 502 Bad\u{1b}[31m Gateway\r\n\r\n")?.description,
                       "proxy proxy:3128 answered 502 Bad[31m Gateway to CONNECT gw.example.com:7443")
        XCTAssertEqual(answer("HTTP/1.1 100 Continue\r\n\r\n")?.kind, .protocolViolation)
        XCTAssertEqual(answer("HTTP/1.1 20 OK\r\n\r\n")?.kind, .protocolViolation)
        XCTAssertEqual(answer("HTTP/2 200 OK\r\n\r\n")?.kind, .protocolViolation)
        // A SOCKS server answering a CONNECT is told apart at its first byte.
        let socks = try XCTUnwrap(answer("\u{05}\u{ff}"))
        XCTAssertTrue(socks.description.contains("socks5://"), socks.description)
    }

    func testHTTPHeadIsBounded() throws {
        var h = EgressProxyHandshake(proxy: proxy("http://proxy:3128"), gateway: gateway)
        _ = h.start()
        XCTAssertEqual(h.feed(Array("HTTP/1.1 200 OK\r\n".utf8)), .wait)
        let field = Array("X-Filler: \(String(repeating: "a", count: 1000))\r\n".utf8)
        var step = EgressProxyHandshake.Step.wait
        var fed = 0
        while case .wait = step, fed < 64 {
            step = h.feed(field)
            fed += 1
        }
        let f = try XCTUnwrap(failure(step))
        XCTAssertTrue(f.description.contains("header too large"), f.description)
        XCTAssertLessThanOrEqual(fed * field.count, EgressProxyHandshake.maxHTTPHead + field.count)
    }

    // MARK: SOCKS5

    func testSOCKS5WithoutAuthenticationSendsTheResolvedAddress() throws {
        let p = proxy("socks5://127.0.0.1:1080")
        XCTAssertTrue(EgressProxyHandshake.needsAddress(proxy: p, gateway: gateway))
        var h = EgressProxyHandshake(proxy: p, gateway: gateway, gatewayAddress: IPAddress("192.0.2.7"))
        XCTAssertEqual(sent(h.start()), [5, 1, 0])
        XCTAssertEqual(sent(h.feed([5])), nil)
        XCTAssertEqual(sent(h.feed([0])), [5, 1, 0, 1, 192, 0, 2, 7, 0x1d, 0x13])
        // The reply in pieces, with an IPv6 bound address, then two tunnel bytes.
        XCTAssertEqual(h.feed([5, 0, 0, 4]), .wait)
        XCTAssertEqual(h.feed([UInt8](repeating: 0, count: 16)), .wait)
        XCTAssertEqual(h.feed([0x04, 0x38, 0xaa, 0xbb]), .connected(early: [0xaa, 0xbb]))
    }

    func testSOCKS5WithoutAddressCannotStart() throws {
        var h = EgressProxyHandshake(proxy: proxy("socks5://127.0.0.1:1080"), gateway: gateway)
        XCTAssertEqual(failure(h.start())?.kind, .unreachable)
        // An IPv6 gateway literal needs no resolving.
        let v6 = HostPort(host: "2001:db8::2", port: 443)
        XCTAssertFalse(EgressProxyHandshake.needsAddress(proxy: proxy("socks5://127.0.0.1:1080"), gateway: v6))
        var literal = EgressProxyHandshake(proxy: proxy("socks5://127.0.0.1:1080"), gateway: v6)
        _ = literal.start()
        XCTAssertEqual(sent(literal.feed([5, 0])), [5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 10) + [0, 2, 1, 0xbb])
    }

    func testSOCKS5HostnameWithUsernamePassword() throws {
        let p = proxy("socks5h://bob:hunter2@proxy:1080")
        XCTAssertFalse(EgressProxyHandshake.needsAddress(proxy: p, gateway: gateway))
        var h = EgressProxyHandshake(proxy: p, gateway: gateway)
        XCTAssertEqual(sent(h.start()), [5, 2, 0, 2])
        XCTAssertEqual(sent(h.feed([5, 2])), [1, 3] + Array("bob".utf8) + [7] + Array("hunter2".utf8))
        let name = Array("gw.example.com".utf8)
        XCTAssertEqual(sent(h.feed([1, 0])), [5, 1, 0, 3, UInt8(name.count)] + name + [0x1d, 0x13])
        // A reply with a name as the bound address (ATYP 3).
        XCTAssertEqual(h.feed([5, 0, 0, 3, 2, 0x61]), .wait)
        XCTAssertEqual(h.feed([0x62, 0, 80]), .connected(early: []))
    }

    func testSOCKS5hSendsAGatewayWrittenAsAnAddressAsAnAddress() {
        var h = EgressProxyHandshake(proxy: proxy("socks5h://proxy:1080"), gateway: HostPort(host: "192.0.2.9", port: 443))
        _ = h.start()
        XCTAssertEqual(sent(h.feed([5, 0])), [5, 1, 0, 1, 192, 0, 2, 9, 1, 0xbb])
    }

    func testSOCKS5AuthenticationRefusals() throws {
        var refused = EgressProxyHandshake(proxy: proxy("socks5h://bob:hunter2@proxy:1080"), gateway: gateway)
        _ = refused.start()
        _ = refused.feed([5, 2])
        let f = try XCTUnwrap(failure(refused.feed([1, 1])))
        XCTAssertTrue(f.isAuthentication)
        XCTAssertEqual(f.description, "proxy proxy:1080 refused the SOCKS5 user name and password (RFC 1929 status 1)")

        var noMethod = EgressProxyHandshake(proxy: proxy("socks5h://proxy:1080"), gateway: gateway)
        _ = noMethod.start()
        let g = try XCTUnwrap(failure(noMethod.feed([5, 0xff])))
        XCTAssertTrue(g.isAuthentication)
        XCTAssertTrue(g.description.contains("set proxy_credentials"), g.description)

        // Username/password chosen though fastgw offered none.
        var unoffered = EgressProxyHandshake(proxy: proxy("socks5h://proxy:1080"), gateway: gateway)
        _ = unoffered.start()
        XCTAssertEqual(failure(unoffered.feed([5, 2]))?.kind, .protocolViolation)

        var badSubversion = EgressProxyHandshake(proxy: proxy("socks5h://bob:hunter2@proxy:1080"), gateway: gateway)
        _ = badSubversion.start()
        _ = badSubversion.feed([5, 2])
        XCTAssertEqual(failure(badSubversion.feed([5, 0]))?.kind, .protocolViolation)
    }

    func testSOCKS5HostileReplies() throws {
        func reply(_ bytes: [UInt8], first: [UInt8] = [5, 0]) -> EgressProxyFailure? {
            var h = EgressProxyHandshake(proxy: proxy("socks5h://proxy:1080"), gateway: gateway)
            _ = h.start()
            if let f = failure(h.feed(first)) { return f }
            return failure(h.feed(bytes))
        }
        // Wrong version in the method answer, and an HTTP proxy behind a socks5:// URL.
        XCTAssertEqual(reply([], first: [4, 0])?.description,
                       "proxy proxy:1080 answered with SOCKS version 4, expected 5 (is it a SOCKS5 proxy?)")
        XCTAssertTrue(reply([], first: Array("HTTP/1.1 400".utf8))?.description.contains("write http://") == true)
        // More than the method answer before fastgw sent its request.
        XCTAssertEqual(reply([], first: [5, 0, 5, 0])?.kind, .protocolViolation)
        // Bad address type, refusal codes, wrong version in the reply.
        XCTAssertEqual(reply([5, 0, 0, 9])?.description, "proxy proxy:1080 sent a SOCKS5 reply with unknown address type 9")
        XCTAssertEqual(reply([5, 5])?.description,
                       "proxy proxy:1080 could not connect to gw.example.com:7443: connection refused (SOCKS5 reply 5)")
        XCTAssertEqual(reply([5, 2])?.kind, .refused)
        XCTAssertEqual(reply([1, 0, 0, 1])?.kind, .protocolViolation)
    }

    func testBytesBeforeStartAreRefused() {
        var h = EgressProxyHandshake(proxy: proxy("socks5h://proxy:1080"), gateway: gateway)
        XCTAssertEqual(failure(h.feed([5, 0]))?.kind, .protocolViolation)
    }
}
