import Protocol
import XCTest

/// Hostile and huge files: every bound in `TOMLLimits` is an error with a line, never a crash
/// (the forms a fuzzer found: 100,000-deep arrays, inline tables, dotted keys and headers).
final class TOMLLimitsTests: XCTestCase {
    private let deep = 100_000
    private let depthMessage = "more than 32 levels of nesting (each part of a table header or dotted key, and each array or inline table, is one level)"

    private func error(_ text: String) -> TOMLSyntaxError? {
        do {
            _ = try TOMLParser.parse(text)
            return nil
        } catch {
            return error
        }
    }

    private func error(bytes: [UInt8]) -> TOMLSyntaxError? {
        do {
            _ = try TOMLParser.parse(bytes: bytes)
            return nil
        } catch {
            return error
        }
    }

    func testDeepArraysAreRefusedAtTheirLine() {
        XCTAssertEqual(error("x = " + String(repeating: "[", count: deep)), TOMLSyntaxError(line: 1, message: depthMessage))
        // Arrays may span lines: the error is on the line of the 32nd "[" (the key is level one).
        XCTAssertEqual(error("x = " + String(repeating: "[\n", count: deep))?.line, 32)
        XCTAssertEqual(error("[t]\nx = " + String(repeating: "[", count: deep) + String(repeating: "]", count: deep))?.line, 2)
    }

    func testDeepInlineTablesAreRefused() {
        let text = "x = " + String(repeating: "{a=", count: deep) + "1" + String(repeating: "}", count: deep)
        XCTAssertEqual(error(text), TOMLSyntaxError(line: 1, message: depthMessage))
        XCTAssertEqual(error("x = " + String(repeating: "{a=[", count: deep)), TOMLSyntaxError(line: 1, message: depthMessage))
    }

    func testLongDottedKeysAndHeadersAreRefused() {
        let path = Array(repeating: "a", count: deep).joined(separator: ".")
        XCTAssertEqual(error("ok = 1\n\(path) = 1"), TOMLSyntaxError(line: 2, message: depthMessage))
        XCTAssertEqual(error("[\(path)]"), TOMLSyntaxError(line: 1, message: depthMessage))
        XCTAssertEqual(error("[[\(path)]]"), TOMLSyntaxError(line: 1, message: depthMessage))
        XCTAssertEqual(error("x = {\(path) = 1}"), TOMLSyntaxError(line: 1, message: depthMessage))
        let quoted = Array(repeating: "\"a\"", count: deep).joined(separator: ".")
        XCTAssertEqual(error("\(quoted) = 1"), TOMLSyntaxError(line: 1, message: depthMessage))
    }

    func testDepthCountsHeaderKeyAndValueTogether() throws {
        func key(_ n: Int) -> String { Array(repeating: "k", count: n).joined(separator: ".") }
        func arrays(_ n: Int) -> String { String(repeating: "[", count: n) + String(repeating: "]", count: n) }
        // Exactly 32 levels is accepted, in each form and mixed.
        XCTAssertNil(error("x = " + arrays(31)))
        XCTAssertNil(error("\(key(32)) = 1"))
        XCTAssertNil(error("[\(key(32))]"))
        XCTAssertNil(error("[\(key(16))]\n\(key(8)) = \(arrays(8))"))
        XCTAssertNil(error("x = {\(key(30)) = 1}"))
        // One more is refused.
        XCTAssertEqual(error("x = " + arrays(32))?.line, 1)
        XCTAssertEqual(error("\(key(33)) = 1")?.line, 1)
        XCTAssertEqual(error("[\(key(16))]\n\(key(8)) = \(arrays(9))")?.line, 2)
        XCTAssertEqual(error("[[\(key(20))]]\n\(key(13)) = 1")?.line, 2)
        XCTAssertEqual(error("x = {\(key(31)) = 1}")?.line, 1)
        XCTAssertEqual(error("x = {a = {\(key(30)) = 1}}")?.line, 1)
        let t = try TOMLParser.parse("x = " + arrays(31))
        XCTAssertNotNil(t["x"]?.array)
    }

    func testKeyAndStringLengths() {
        let maxKey = String(repeating: "k", count: TOMLLimits.maxKeyLength)
        XCTAssertNil(error("\(maxKey) = 1"))
        XCTAssertNil(error("\"\(maxKey)\" = 1"))
        XCTAssertEqual(error("a = 1\n\(maxKey)k = 1"), TOMLSyntaxError(line: 2, message: "a key is longer than 1024 bytes"))
        XCTAssertEqual(error("'\(maxKey)k' = 1")?.line, 1)
        XCTAssertEqual(error("[a.\(maxKey)k]")?.line, 1)

        let maxString = String(repeating: "s", count: TOMLLimits.maxStringLength)
        XCTAssertNil(error("a = \"\(maxString)\""))
        XCTAssertNil(error("a = '\(maxString)'"))
        XCTAssertEqual(error("a = \"\(maxString)s\""), TOMLSyntaxError(line: 1, message: "a string is longer than 64 KiB"))
        XCTAssertEqual(error("a = '\(maxString)s'")?.line, 1)
        XCTAssertEqual(error("a = \"\"\"\n\n\(maxString)s\"\"\"")?.line, 1, "the line the string opened on")
        XCTAssertEqual(error("a = '''\(maxString)s'''")?.line, 1)
    }

    func testErrorsQuoteAtMostAFewBytesOfTheFile() throws {
        let long = String(repeating: "v", count: 100_000)
        let e = try XCTUnwrap(error("x = \(long)"))
        XCTAssertTrue(e.message.hasPrefix("invalid value vvvv"), e.message)
        XCTAssertLessThan(e.message.utf8.count, 150)
        let key = Array(repeating: String(repeating: "k", count: 1000), count: 30).joined(separator: ".")
        XCTAssertLessThan(try XCTUnwrap(error("\(key) = 1\n\(key) = 2")).message.utf8.count, 150)
    }

    func testValidationErrorsKeepTheirEndWhenTheyQuoteALongValue() throws {
        let name = String(repeating: "n", count: 60_000)
        let text = "[tunnel]\ncert = \"c\"\nkey = \"k\"\n[[agent]]\nname = \"\(name)\"\ntoken = \"0123456789abcdef\"\n"
        guard case .failure(let e) = GatewayConfig.parse(text: text, file: "gw.toml", readFile: { _ in "" }) else { return XCTFail("accepted") }
        XCTAssertTrue(e.firstLine.hasPrefix("gw.toml:5: agent \"nnnn"), e.firstLine)
        XCTAssertTrue(e.firstLine.hasSuffix("\" is invalid: use 1-64 characters from A-Z a-z 0-9 . _ -"), e.firstLine)
        XCTAssertLessThan(e.firstLine.utf8.count, 600)
        // One Character of many combining scalars is cut too.
        let key = "\"e" + String(repeating: "\u{301}", count: 500) + "\""
        XCTAssertLessThan(try XCTUnwrap(error("\(key) = 1\n\(key) = 2")).message.unicodeScalars.count, 100)
    }

    func testFileSizeIsCheckedBeforeParsing() throws {
        // Exactly the limit parses; one byte more is refused at the line that passes it.
        let line = Array("# a comment line of 32 bytes...\n".utf8)
        XCTAssertEqual(line.count, 32)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(TOMLLimits.maxFileSize + 1)
        while bytes.count < TOMLLimits.maxFileSize { bytes += line }
        XCTAssertEqual(bytes.count, TOMLLimits.maxFileSize)
        XCTAssertNil(error(bytes: bytes))
        bytes.append(UInt8(ascii: "x"))
        let e = try XCTUnwrap(error(bytes: bytes))
        XCTAssertEqual(e.line, TOMLLimits.maxFileSize / 32 + 1)
        XCTAssertEqual(e.message, "the file is larger than 4 MiB (4194304 bytes), the most a configuration may hold; this line passes that limit")
        XCTAssertEqual(error(String(decoding: bytes, as: UTF8.self)), e)
        guard case .failure(let configError) = ConfigText.decode(bytes, file: "big.toml") else { return XCTFail("accepted") }
        XCTAssertEqual(configError.firstLine, "big.toml:131073: \(e.message)")
    }

    func testInvalidUTF8IsAnErrorWithLineAndColumn() {
        let good = Array("a = 1\nb = \"".utf8)
        for (bad, name) in [([0xff], "stray byte"), ([0xc0, 0xaf], "overlong"), ([0xed, 0xa0, 0x80], "surrogate"), ([0xe2, 0x82], "truncated")] as [([UInt8], String)] {
            let bytes = good + bad + Array("\"\nc = 2\n".utf8)
            XCTAssertEqual(error(bytes: bytes)?.line, 2, name)
            XCTAssertEqual(error(bytes: bytes)?.message.hasPrefix("invalid UTF-8 at column 6 (byte 0x\(String(bad[0], radix: 16)))"), true, name)
            guard case .failure(let e) = ConfigText.decode(bytes, file: "gw.toml") else { return XCTFail("accepted \(name)") }
            XCTAssertTrue(e.firstLine.hasPrefix("gw.toml:2: invalid UTF-8 at column 6"), e.firstLine)
        }
        // At the very end of a file without a newline.
        XCTAssertEqual(error(bytes: Array("a = 1\n\n# é".utf8).dropLast()), TOMLSyntaxError(line: 3, message: "invalid UTF-8 at column 3 (byte 0xc3); save the file as UTF-8"))
        XCTAssertNil(error(bytes: Array("a = \"é 😀\"".utf8)))
        XCTAssertEqual(ConfigText.decode(Array("a = 1".utf8), file: "x"), .success("a = 1"))
    }

    func testStaticArraysAreNotExtendedByHeaders() {
        XCTAssertEqual(error("x = [{a = 1}]\n[x.b]"), TOMLSyntaxError(line: 2, message: "x is an array of values, not of tables"))
        XCTAssertEqual(error("x = [1]\n[[x]]"), TOMLSyntaxError(line: 2, message: "[[x]] conflicts with x defined before"))
        XCTAssertEqual(error("x = 1\n[x.y]"), TOMLSyntaxError(line: 2, message: "x is a value, not a table"))
        XCTAssertNil(error("[[a]]\n[[a.b]]\nk = 1\n[[a.b]]\n[[a]]\n[a.c]\nk = 2"))
    }

    /// Parsing is linear in the number of tables: this input took minutes when every key of a
    /// `[[agent]]` copied the agents before it. Not timed here (timings belong to benchmarks);
    /// a quadratic regression shows as a test that does not finish.
    func testFiftyThousandArrayTablesParse() throws {
        let n = 50_000
        var text = "[tunnel]\nlisten = \"127.0.0.1:7443\"\ncert = \"gw.crt\"\nkey = \"gw.key\"\n"
        for i in 0..<n { text += "[[agent]]\nname = \"a\(i)\"\ntoken = \"t\(i)-0123456789abcdef\"\nallow_ports = [\(1000 + i % 60000)]\n" }
        let t = try TOMLParser.parse(text)
        let agents = try XCTUnwrap(t["agent"]?.array)
        XCTAssertEqual(agents.count, n)
        XCTAssertEqual(agents[n - 1].table?["name"]?.string, "a\(n - 1)")
        XCTAssertEqual(agents[n - 1].table?.line(of: "allow_ports"), 4 + 4 * n)

        guard case .success(let config) = GatewayConfig.parse(text: text, file: "gw.toml", readFile: { _ in "" }) else {
            return XCTFail("50,000 agents refused")
        }
        XCTAssertEqual(config.agents.count, n)
    }
}
