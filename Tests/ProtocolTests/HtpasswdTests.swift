import XCTest
@testable import Protocol

final class HtpasswdTests: XCTestCase {
    private let sha512 = "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG."
    private let sha512Rounds = "$6$rounds=5000$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1"
    private let bcrypt = "$2b$05$dYJd/NaH4IFyk4D2uqReT.rGHZbCwSNQ0kOHFg/tfVcamFwtAw2yy"

    private func parse(_ text: String) -> Result<Htpasswd, ConfigError> {
        Htpasswd.parse(Array(text.utf8), file: "users.htpasswd")
    }

    private func problems(_ text: String) -> [String] {
        guard case .failure(let error) = parse(text) else { return [] }
        return error.diagnostics.map(\.description)
    }

    func testAcceptsBcryptAndSHA512WithCommentsAndBlankLines() throws {
        let file = try parse("""
            # staging users
            alice:\(bcrypt)

              \t
            bob:\(sha512)\r
            carol:\(sha512Rounds)
            dave:\(bcrypt.replacingOccurrences(of: "$2b$", with: "$2y$"))
            erin:\(bcrypt.replacingOccurrences(of: "$2b$", with: "$2a$"))
            """).get()
        XCTAssertEqual(file.count, 5)
        XCTAssertEqual(file.entry(for: "alice")?.scheme, .bcrypt)
        XCTAssertEqual(file.entry(for: "alice")?.line, 2)
        XCTAssertEqual(file.entry(for: "bob")?.scheme, .sha512crypt)
        XCTAssertEqual(file.entry(for: "bob")?.hash, sha512, "the CR of a CRLF line is not part of the hash")
        XCTAssertEqual(file.entry(for: "carol")?.scheme, .sha512crypt)
        XCTAssertNil(file.entry(for: "mallory"))
        XCTAssertNil(file.entry(for: "Alice"), "user names are compared exactly")
    }

    func testAByteOrderMarkAndBlanksAroundAnEntryAreNotPartOfIt() throws {
        let file = try parse("\u{FEFF}alice:\(bcrypt)\n  bob:\(sha512) \t\n").get()
        XCTAssertEqual(file.entry(for: "alice")?.hash, bcrypt)
        XCTAssertEqual(file.entry(for: "bob")?.hash, sha512)
        XCTAssertNil(file.entry(for: "  bob"))
    }

    func testRefusesWeakAndUnknownFormatsWithLineAndHowTo() {
        let lines = problems("""
            a:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/
            b:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=
            c:plaintext
            d:abJnggxhB/yWI
            e:$1$abc$iCQ2D3nhptRYi27fDYv2s1
            f:$5$salt$hash
            g:$y$j9T$salt$hash
            h:
            """)
        XCTAssertEqual(lines.count, 8)
        for (i, line) in lines.enumerated() {
            XCTAssertTrue(line.hasPrefix("users.htpasswd:\(i + 1): "), line)
            XCTAssertTrue(line.contains("htpasswd -B") && line.contains("mkpasswd -m sha-512"), line)
        }
        XCTAssertTrue(lines[0].contains("MD5"))
        XCTAssertTrue(lines[1].contains("{SHA}"))
        XCTAssertTrue(lines[2].contains("plain text"))
        XCTAssertTrue(lines[3].contains("DES"))
    }

    func testRefusesMalformedHashesAndAbsurdCosts() {
        let bad = [
            String(bcrypt.dropLast()),                                   // one character short
            bcrypt.replacingOccurrences(of: "$05$", with: "$5x$"),
            bcrypt.replacingOccurrences(of: "$05$", with: "$+5$"),
            bcrypt.replacingOccurrences(of: "$05$", with: "$31$"),       // days per check
            bcrypt.replacingOccurrences(of: "$05$", with: "$03$"),
            bcrypt.replacingOccurrences(of: "T.", with: "T!"),
            String(sha512.dropLast()),
            sha512.replacingOccurrences(of: "abcdefgh", with: "abcdefghabcdefghX"),  // 17-byte salt
            sha512Rounds.replacingOccurrences(of: "rounds=5000", with: "rounds=999"),
            sha512Rounds.replacingOccurrences(of: "rounds=5000", with: "rounds=99999999"),
            sha512Rounds.replacingOccurrences(of: "rounds=5000", with: "rounds=+5000"),
            sha512 + "x",
        ]
        for hash in bad {
            XCTAssertEqual(problems("u:\(hash)").count, 1, hash)
        }
    }

    func testUserNamesAndDuplicates() {
        XCTAssertEqual(problems("alice:\(bcrypt)\nalice:\(sha512)"),
                       ["users.htpasswd:2: user \"alice\" is already defined on line 1"])
        XCTAssertEqual(problems(":\(bcrypt)").count, 1)
        XCTAssertEqual(problems("no colon here").first, "users.htpasswd:1: expected user:hash")
        XCTAssertEqual(problems("a\u{1}b:\(bcrypt)").count, 1)
        XCTAssertEqual(Htpasswd.parse([0xff, 0x3a] + Array(bcrypt.utf8), file: "f").map(\.count), .failure(ConfigError([
            ConfigDiagnostic(file: "f", line: 1, message: "user name must be 1 to 255 bytes of UTF-8 without control characters"),
        ])))
        XCTAssertNoThrow(try parse("élodie:\(bcrypt)").get())
    }

    func testBoundsOnFileLineAndEntries() {
        let big = [UInt8](repeating: UInt8(ascii: "#"), count: Htpasswd.maxFileBytes + 1)
        guard case .failure(let e) = Htpasswd.parse(big, file: "f") else { return XCTFail("accepted a huge file") }
        XCTAssertTrue(e.firstLine.contains("larger than"))
        XCTAssertEqual(problems("# " + String(repeating: "x", count: 2000)).first, "users.htpasswd:1: line is longer than 1024 bytes")
        let many = (0...Htpasswd.maxEntries).map { "u\($0):\(bcrypt)" }.joined(separator: "\n")
        XCTAssertEqual(many.utf8.count < Htpasswd.maxFileBytes, true)
        XCTAssertEqual(problems(many).first, "users.htpasswd:10001: more than 10000 users in one htpasswd file")
        // A file full of errors reports a bounded number of them.
        XCTAssertEqual(problems(String(repeating: "bad\n", count: 500)).count, 20)
    }
}
