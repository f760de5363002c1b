import Foundation
import NIOCore
import NIOPosix
import Protocol
import XCTest

@testable import Sidecar

/// Real entries made at test time by independent tools — `openssl passwd -6` for
/// SHA-512-crypt, Python's crypt module and `htpasswd -B` for bcrypt — checked through the
/// system's libcrypt.
final class PasswordVerifierTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUp() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    override func tearDown() {
        try? group.syncShutdownGracefully()
    }

    private func run(_ path: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("\(path) \(args) failed") }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func sha512(_ password: String) throws -> String {
        try run("/usr/bin/openssl", ["passwd", "-6", password])
    }

    /// Python's crypt module (gone in Python 3.13), else apache2-utils' `htpasswd -B`.
    private func bcrypt(_ password: String, cost: Int) throws -> String {
        if let hash = try? run("/usr/bin/python3", ["-W", "ignore", "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1<<\(cost))))", password]) {
            return hash
        }
        return String(try run("/usr/bin/htpasswd", ["-nbB", "-C", "\(cost)", "u", password]).dropFirst(2))
    }

    private func users(_ lines: [String]) throws -> Htpasswd {
        try Htpasswd.parse(Array(lines.joined(separator: "\n").utf8), file: "test.htpasswd").get()
    }

    private func check(_ v: PasswordVerifier, _ file: Htpasswd, _ user: String, _ password: String) throws -> PasswordVerifier.Outcome {
        try v.verify(BasicCredentials(user: user, password: password), against: file, on: group.next()).wait()
    }

    func testRightWrongAndUnknownForBothFormats() throws {
        let alice = try bcrypt("wonder land", cost: 5)
        // htpasswd -B writes $2y$, older tools $2a$: the same hash to libxcrypt.
        let file = try users(["alice:" + alice, "bob:" + (try sha512("s3cret:ü")),
                              "dave:$2y$" + alice.dropFirst(4), "erin:$2a$" + alice.dropFirst(4),
                              try run("/usr/bin/htpasswd", ["-nbB", "-C", "5", "frank", "ösel"])])
        XCTAssertEqual(file.entry(for: "alice")?.hash.prefix(4), "$2b$")
        let v = PasswordVerifier()
        defer { try? v.shutdown() }
        XCTAssertEqual(try check(v, file, "alice", "wonder land"), .accepted)
        XCTAssertEqual(try check(v, file, "alice", "wonder lan"), .rejected)
        XCTAssertEqual(try check(v, file, "bob", "s3cret:ü"), .accepted)
        XCTAssertEqual(try check(v, file, "bob", "s3cret:u"), .rejected)
        XCTAssertEqual(try check(v, file, "bob", "wonder land"), .rejected, "another user's password")
        XCTAssertEqual(try check(v, file, "carol", "wonder land"), .rejected)
        XCTAssertEqual(v.counts.hashed, 5, "an unknown user costs no hash")
        XCTAssertEqual(try check(v, file, "dave", "wonder land"), .accepted)
        XCTAssertEqual(try check(v, file, "erin", "wonder land"), .accepted)
        XCTAssertEqual(try check(v, file, "erin", "Wonder land"), .rejected)
        XCTAssertEqual(try check(v, file, "frank", "ösel"), .accepted, "an entry written by htpasswd -B")
        XCTAssertEqual(try check(v, file, "frank", "osel"), .rejected)
        XCTAssertFalse(CryptCheck.matches(password: "s3cret:ü\u{0}x", hash: file.entry(for: "bob")!.hash))
        XCTAssertFalse(CryptCheck.matches(password: "x", hash: "*0"))
    }

    func testSuccessIsCachedFailureNever() throws {
        let file = try users(["alice:" + (try sha512("pw"))])
        let v = PasswordVerifier(limits: .init(cacheTTL: .milliseconds(300)))
        defer { try? v.shutdown() }
        for _ in 0..<5 { XCTAssertEqual(try check(v, file, "alice", "pw"), .accepted) }
        XCTAssertEqual(v.counts.hashed, 1)
        for _ in 0..<3 { XCTAssertEqual(try check(v, file, "alice", "nope"), .rejected) }
        XCTAssertEqual(v.counts.hashed, 4, "every wrong password is hashed again")
        usleep(400_000)
        XCTAssertEqual(try check(v, file, "alice", "pw"), .accepted)
        XCTAssertEqual(v.counts.hashed, 5, "an expired success is checked again")
        // A changed entry (new hash for the same user) does not reuse the old success.
        let changed = try users(["alice:" + (try sha512("pw"))])
        XCTAssertEqual(try check(v, changed, "alice", "pw"), .accepted)
        XCTAssertEqual(v.counts.hashed, 6)
    }

    func testIdenticalChecksInFlightShareOneHash() throws {
        let file = try users(["alice:" + (try bcrypt("pw", cost: 10))])
        let v = PasswordVerifier()
        defer { try? v.shutdown() }
        let futures = (0..<16).map { _ in v.verify(BasicCredentials(user: "alice", password: "pw"), against: file, on: group.next()) }
        for f in futures { XCTAssertEqual(try f.wait(), .accepted) }
        XCTAssertEqual(v.counts.hashed, 1)
    }

    func testPendingChecksAreBoundedAndTheRestAreBusy() throws {
        let file = try users(["alice:" + (try bcrypt("pw", cost: 11))])
        let v = PasswordVerifier(limits: .init(threads: 1, maxPending: 2))
        defer { try? v.shutdown() }
        let futures = (0..<6).map { i in v.verify(BasicCredentials(user: "alice", password: "guess\(i)"), against: file, on: group.next()) }
        let outcomes = try futures.map { try $0.wait() }
        XCTAssertEqual(outcomes.filter { $0 == .rejected }.count, 2)
        XCTAssertEqual(outcomes.filter { $0 == .busy }.count, 4)
        XCTAssertEqual(v.counts.refusedBusy, 4)
        // Once the queue drained, checks are taken again.
        XCTAssertEqual(try check(v, file, "alice", "pw"), .accepted)
    }

    func testOneClientAndOnePolicyHaveCappedShares() throws {
        let file = try users(["alice:" + (try bcrypt("pw", cost: 11))])
        let v = PasswordVerifier(limits: .init(threads: 1, maxPending: 8, maxPendingPerClient: 2, maxPendingPerPolicy: 3))
        defer { try? v.shutdown() }
        let mallory = ClientKey(IPAddress("192.0.2.66")!)
        let loop = group.next()
        // One client: 2 of its 4 checks are taken.
        let guesses = (0..<4).map { i in
            v.verify(BasicCredentials(user: "alice", password: "guess\(i)"), against: file, client: mallory, policy: "a", on: loop)
        }
        // Another client on the same policy gets the policy's third slot, then it is full.
        let other = ClientKey(IPAddress("192.0.2.7")!)
        let second = (0..<2).map { i in
            v.verify(BasicCredentials(user: "alice", password: "x\(i)"), against: file, client: other, policy: "a", on: loop)
        }
        // Another policy still has room.
        let elsewhere = v.verify(BasicCredentials(user: "alice", password: "pw"), against: file, client: other, policy: "b", on: loop)
        XCTAssertEqual(try guesses.map { try $0.wait() }, [.rejected, .rejected, .busy, .busy])
        XCTAssertEqual(try second.map { try $0.wait() }, [.rejected, .busy])
        XCTAssertEqual(try elsewhere.wait(), .accepted)
    }

    func testOverlongPasswordsAreRefusedWithoutHashing() throws {
        let long = String(repeating: "p", count: PasswordVerifier.maxPasswordBytes + 1)
        let file = try users(["bob:" + (try sha512(long))])
        let v = PasswordVerifier()
        defer { try? v.shutdown() }
        XCTAssertEqual(try check(v, file, "bob", long), .rejected)
        XCTAssertEqual(v.counts.hashed, 0)
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(CryptCheck.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(CryptCheck.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(CryptCheck.constantTimeEqual([1, 2, 3], [1, 2]))
    }
}
