import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Protocol
import XCTest

@testable import Sidecar

/// The ACME client against a scripted HTTP server on loopback: the answers a broken or
/// hostile server could give (silence, garbage, endless bodies, problem documents), the
/// badNonce retry, and ARI.
final class AcmeHostileServerTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var server: Channel?

    override func setUp() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() {
        try? server?.close().wait()
        try? group.syncShutdownGracefully()
    }

    /// Starts the scripted server; returns its base URL.
    private func serve(_ answer: @escaping @Sendable (ScriptedRequest) -> ScriptedAnswer) throws -> String {
        let channel = try ServerBootstrap(group: group)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(ScriptedHTTPHandler(answer)) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        server = channel
        return "http://127.0.0.1:\(channel.localAddress!.port!)"
    }

    private func client(_ base: String, timeout: TimeAmount = .seconds(5)) throws -> AcmeClient {
        AcmeClient(directoryURL: base + "/dir", trustCAFile: nil, accountKey: try AcmeKey.generate(), email: nil, group: group, timeout: timeout)
    }

    private func expectError(_ acme: AcmeClient, containing text: String, file: StaticString = #filePath, line: UInt = #line) async {
        do {
            _ = try await acme.obtain(hosts: ["a.fastgw.test"], certificateKey: try AcmeKey.generate(), kinds: [.http01], sink: RecordingChallengeSink())
            XCTFail("obtain succeeded", file: file, line: line)
        } catch {
            XCTAssertTrue(error.description.contains(text), error.description, file: file, line: line)
        }
    }

    func testDirectoryThatNeverAnswersEndsAtTheDeadline() async throws {
        let base = try serve { _ in .silence }
        let started = Date()
        await expectError(try client(base, timeout: .seconds(1)), containing: "GET \(base)/dir: no complete answer within 1 s")
        XCTAssertLessThan(Date().timeIntervalSince(started), 4)
    }

    func testGarbageAnswerIsAnError() async throws {
        let base = try serve { _ in .raw(Array("SSH-2.0-OpenSSH_9.2\r\n\r\n".utf8)) }
        await expectError(try client(base), containing: "\(base)/dir: malformed answer: not an HTTP/1.x status line")
    }

    func testOversizedAnswersAreCutOff() async throws {
        let declared = try serve { _ in .raw(Array("HTTP/1.1 200 OK\r\nContent-Length: 5000000\r\n\r\n{".utf8)) }
        await expectError(try client(declared), containing: "larger than 1048576")
        try await server?.close().get()
        // A chunked body that keeps coming: refused once past the cap, not buffered to the end.
        let chunk = Array("ffff\r\n".utf8) + [UInt8](repeating: 0x41, count: 0xffff) + Array("\r\n".utf8)
        let endless = try serve { _ in .raw(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8) + Array((0..<40).map { _ in chunk }.joined())) }
        await expectError(try client(endless), containing: "response body larger than 1048576 bytes")
    }

    func testProblemDocumentBecomesTheErrorText() async throws {
        let base = try serve { _ in
            .json(status: 503, #"{"type":"urn:ietf:params:acme:error:serverInternal","detail":"down for maintenance"}"#, headers: [])
        }
        await expectError(try client(base), containing: "ACME server answered \(base)/dir with status 503: serverInternal: down for maintenance")
    }

    func testBadNonceIsRetriedOnceWithTheFreshNonce() async throws {
        let fake = FakeAcme(badNonces: 1)
        let base = try serve(fake.answer)
        fake.base.withLockedValue { $0 = base }
        let acme = try client(base)
        let account = try await acme.accountURL()
        XCTAssertEqual(account, base + "/acct/1")
        XCTAssertEqual(fake.seenNonces.withLockedValue { $0 }, ["n1", "n2"])

        let stubborn = FakeAcme(badNonces: 5)
        try await server?.close().get()
        let base2 = try serve(stubborn.answer)
        stubborn.base.withLockedValue { $0 = base2 }
        let stubbornClient = try client(base2)
        do {
            _ = try await stubbornClient.accountURL()
            XCTFail("two badNonce answers in a row end the attempt")
        } catch {
            XCTAssertEqual(error.problemType, "urn:ietf:params:acme:error:badNonce")
            XCTAssertEqual(stubborn.seenNonces.withLockedValue { $0 }.count, 2)
        }
    }

    /// A CA whose order names a host the gateway never asked for gets no challenge answer
    /// published for it, and the order fails.
    func testAnAuthorizationForAHostNotRequestedFailsTheOrder() async throws {
        let fake = FakeAcme(badNonces: 0, authorizedHost: "victim.example")
        let base = try serve(fake.answer)
        fake.base.withLockedValue { $0 = base }
        let sink = RecordingChallengeSink()
        let acme = try client(base), key = try AcmeKey.generate()
        do {
            _ = try await acme.obtain(hosts: ["a.fastgw.test"], certificateKey: key, kinds: [.http01], sink: sink)
            XCTFail("obtain succeeded")
        } catch {
            XCTAssertTrue(error.description.contains(#"authorization for "victim.example", which was not requested"#), error.description)
        }
        XCTAssertTrue(sink.log.isEmpty, "\(sink.log)")
    }

    /// A certificate naming other hosts than the order's is not handed on for installing.
    func testAnIssuedCertificateForOtherNamesFailsTheOrder() async throws {
        let chain = try String(contentsOfFile: Fixtures.path("gateway.crt"), encoding: .utf8)
        let fake = FakeAcme(badNonces: 0, issues: chain)
        let base = try serve(fake.answer)
        fake.base.withLockedValue { $0 = base }
        let acme = try client(base), key = try AcmeKey.generate()
        do {
            _ = try await acme.obtain(hosts: ["a.fastgw.test"], certificateKey: key, kinds: [.http01], sink: RecordingChallengeSink())
            XCTFail("obtain succeeded")
        } catch {
            XCTAssertTrue(error.description.contains("/cert/1: the certificate names"), error.description)
            XCTAssertTrue(error.description.contains(#"not the requested ["a.fastgw.test"]"#), error.description)
        }
    }

    /// A renewal's order names the certificate it replaces when the directory offers ARI.
    func testARenewalOrderNamesTheCertificateItReplaces() async throws {
        let chain = try String(contentsOfFile: Fixtures.path("gateway.crt"), encoding: .utf8)
        let certID = try XCTUnwrap(AcmeCertificateInfo.ariCertID(chainPEM: chain))
        let fake = FakeAcme(badNonces: 0, authorizedHost: "victim.example")
        let base = try serve(fake.answer)
        fake.base.withLockedValue { $0 = base }
        let acme = try client(base), key = try AcmeKey.generate()
        _ = try? await acme.obtain(hosts: ["a.fastgw.test"], certificateKey: key, kinds: [.http01], sink: RecordingChallengeSink(), replacing: chain)
        _ = try? await acme.obtain(hosts: ["a.fastgw.test"], certificateKey: key, kinds: [.http01], sink: RecordingChallengeSink())
        let payloads = fake.orderPayloads.withLockedValue { $0 }
        XCTAssertEqual(payloads.count, 2)
        XCTAssertTrue(payloads.first?.contains(certID) == true && payloads.first?.contains("replaces") == true, "\(payloads)")
        XCTAssertFalse(payloads.last?.contains("replaces") == true, "a first order replaces nothing")
    }

    func testRenewalWindowFromRenewalInfo() async throws {
        let chain = try String(contentsOfFile: Fixtures.path("gateway.crt"), encoding: .utf8)
        let certID = try XCTUnwrap(AcmeCertificateInfo.ariCertID(chainPEM: chain), "the fixture has an Authority Key Identifier")
        let fake = FakeAcme(badNonces: 0)
        let base = try serve(fake.answer)
        fake.base.withLockedValue { $0 = base }
        let window = await (try client(base)).renewalWindow(certificatePEM: chain)
        XCTAssertEqual(window?.start, 1_735_790_400)
        XCTAssertEqual(window?.end, 1_735_876_800)
        XCTAssertEqual(fake.renewalPaths.withLockedValue { $0 }, ["/ari/" + certID])
        // A garbage certificate asks nothing and gives no window.
        let none = await (try client(base)).renewalWindow(certificatePEM: "not a certificate")
        XCTAssertNil(none)
    }
}

/// A minimal ACME server: directory, nonces, newAccount (the first `badNonces` answers are
/// badNonce), renewalInfo.
private final class FakeAcme: Sendable {
    let base = NIOLockedValueBox("")
    let seenNonces = NIOLockedValueBox<[String]>([])
    let renewalPaths = NIOLockedValueBox<[String]>([])
    /// The decoded JWS payloads of newOrder requests.
    let orderPayloads = NIOLockedValueBox<[String]>([])
    private let badNonces: Int
    /// The host newOrder's authorization names (a hostile CA may name one never requested).
    private let authorizedHost: String
    /// With a chain: the authorization is already valid and the order ends with this chain.
    private let issues: String?
    private let counter = NIOLockedValueBox(0)

    init(badNonces: Int, authorizedHost: String = "a.fastgw.test", issues: String? = nil) {
        self.badNonces = badNonces
        self.authorizedHost = authorizedHost
        self.issues = issues
    }

    func answer(_ request: ScriptedRequest) -> ScriptedAnswer {
        let base = self.base.withLockedValue { $0 }
        switch (request.method, request.path) {
        case ("GET", "/dir"):
            return .json(status: 200, #"{"newNonce":"\#(base)/nonce","newAccount":"\#(base)/acct","newOrder":"\#(base)/order","renewalInfo":"\#(base)/ari/"}"#, headers: [])
        case ("HEAD", "/nonce"):
            return .json(status: 200, "", headers: [("Replay-Nonce", "n1")])
        case ("POST", "/acct"):
            guard let jws = try? JSON.parse(request.body), let protected = jws["protected"]?.string.flatMap(Base64URL.decode),
                  let header = try? JSON.parse(protected), let nonce = header["nonce"]?.string else {
                return .json(status: 400, #"{"type":"urn:ietf:params:acme:error:malformed"}"#, headers: [])
            }
            seenNonces.withLockedValue { $0.append(nonce) }
            let n = counter.withLockedValue { n in
                n += 1
                return n
            }
            if n <= badNonces {
                return .json(status: 400, #"{"type":"urn:ietf:params:acme:error:badNonce","detail":"stale"}"#, headers: [("Replay-Nonce", "n\(n + 1)")])
            }
            return .json(status: 201, #"{"status":"valid"}"#, headers: [("Location", base + "/acct/1"), ("Replay-Nonce", "n\(n + 1)")])
        case ("POST", "/order"):
            if let jws = try? JSON.parse(request.body), let payload = jws["payload"]?.string.flatMap(Base64URL.decode) {
                orderPayloads.withLockedValue { $0.append(String(decoding: payload, as: UTF8.self)) }
            }
            return .json(status: 201, #"{"status":"pending","authorizations":["\#(base)/authz/1"],"finalize":"\#(base)/fin"}"#,
                         headers: [("Location", base + "/order/1"), ("Replay-Nonce", "o1")])
        case ("POST", "/authz/1") where issues != nil:
            return .json(status: 200, #"{"status":"valid","identifier":{"type":"dns","value":"\#(authorizedHost)"},"challenges":[]}"#, headers: [])
        case ("POST", "/order/1"):
            return .json(status: 200, #"{"status":"ready","authorizations":["\#(base)/authz/1"],"finalize":"\#(base)/fin"}"#, headers: [])
        case ("POST", "/fin"):
            return .json(status: 200, #"{"status":"valid","authorizations":["\#(base)/authz/1"],"finalize":"\#(base)/fin","certificate":"\#(base)/cert/1"}"#, headers: [])
        case ("POST", "/cert/1"):
            return .json(status: 200, issues ?? "", headers: [])
        case ("POST", "/authz/1"):
            return .json(status: 200, #"{"status":"pending","identifier":{"type":"dns","value":"\#(authorizedHost)"},"challenges":[{"type":"http-01","url":"\#(base)/chall/1","status":"pending","token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#,
                         headers: [("Replay-Nonce", "o2")])
        case ("GET", let path) where path.hasPrefix("/ari/"):
            renewalPaths.withLockedValue { $0.append(path) }
            return .json(status: 200, #"{"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-03T04:00:00Z"}}"#, headers: [])
        default:
            return .json(status: 404, #"{"type":"urn:ietf:params:acme:error:malformed","detail":"no such resource"}"#, headers: [])
        }
    }
}

struct ScriptedRequest: Sendable {
    let method: String
    let path: String
    let body: [UInt8]
}

enum ScriptedAnswer: Sendable {
    case silence
    case raw([UInt8])
    case json(status: Int, String, headers: [(String, String)])

    var bytes: [UInt8]? {
        switch self {
        case .silence: return nil
        case .raw(let b): return b
        case .json(let status, let body, let headers):
            var head = "HTTP/1.1 \(status) X\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
            for (k, v) in headers { head += "\(k): \(v)\r\n" }
            return Array((head + "\r\n" + body).utf8)
        }
    }
}

/// Reads one request (head and Content-Length body) and writes the scripted answer, then closes.
private final class ScriptedHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let answer: @Sendable (ScriptedRequest) -> ScriptedAnswer
    private var buffer: [UInt8] = []
    private var answered = false

    init(_ answer: @escaping @Sendable (ScriptedRequest) -> ScriptedAnswer) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        buffer += unwrapInboundIn(data).readableBytesView
        guard !answered, let end = (0..<max(0, buffer.count - 3)).first(where: { buffer[$0..<$0 + 4] == [13, 10, 13, 10] }) else { return }
        let head = String(decoding: buffer[..<end], as: UTF8.self).split(separator: "\r\n")
        let line = head[0].split(separator: " ")
        let length = head.dropFirst().compactMap { field -> Int? in
            let parts = field.split(separator: ":", maxSplits: 1)
            return parts.count == 2 && parts[0].lowercased() == "content-length" ? Int(parts[1].trimmingCharacters(in: .whitespaces)) : nil
        }.first ?? 0
        guard buffer.count >= end + 4 + length else { return }
        answered = true
        let request = ScriptedRequest(method: String(line[0]), path: String(line[1]), body: Array(buffer[(end + 4)..<(end + 4 + length)]))
        guard let bytes = answer(request).bytes else { return }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(bytes: bytes))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
