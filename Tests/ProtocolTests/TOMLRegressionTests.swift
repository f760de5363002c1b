import Protocol
import XCTest

/// What the reader once misread (issue #19): numbers, a BOM, control characters, dotted keys.
/// Each is read exactly as TOML 1.0 says, or refused with its line and what TOML requires.
final class TOMLRegressionTests: XCTestCase {
    private func value(_ text: String) throws -> TOMLValue? { try TOMLProbe.value(text) }

    private func error(_ text: String) -> String { TOMLProbe.error(value: text) }

    func testNumbersTOMLAllows() throws {
        XCTAssertEqual(try value("1.2e-3"), .float(1.2e-3), "an exponent's sign is no date")
        XCTAssertEqual(try value("5e+22"), .float(5e22))
        XCTAssertEqual(try value("-2E-2"), .float(-0.02))
        XCTAssertEqual(try value("6.626e-34"), .float(6.626e-34))
        XCTAssertEqual(try value("224_617.445_991_228"), .float(224_617.445_991_228))
        XCTAssertEqual(try value("1e0_6"), .float(1e6), "leading zeros are allowed in an exponent")
        XCTAssertEqual(try value("-9223372036854775808"), .integer(Int.min))
        XCTAssertEqual(try value("9223372036854775807"), .integer(Int.max))
        XCTAssertEqual(try value("+99"), .integer(99))
        XCTAssertEqual(try value("-0"), .integer(0))
        XCTAssertEqual(try value("0xDEAD_beef"), .integer(0xDEAD_BEEF))
        XCTAssertEqual(try value("0o0755"), .integer(0o755))
        XCTAssertEqual(try value("0b1_0"), .integer(2))
        XCTAssertEqual(try value("0x7FFFFFFFFFFFFFFF"), .integer(Int.max))
        XCTAssertEqual(try value("-inf"), .float(-.infinity))
        guard case .float(let nan)? = try value("+nan"), case .float(let zero)? = try value("-0.0") else { return XCTFail("no floats") }
        XCTAssertTrue(nan.isNaN)
        XCTAssertEqual(zero.sign, .minus)
    }

    func testNumbersTOMLRefusesSayWhatItRequires() {
        XCTAssertEqual(error("--99"), "line 2: invalid number --99: a number takes at most one sign")
        XCTAssertEqual(error("0x-1"), "line 2: invalid number 0x-1: only hexadecimal digits may follow its 0x, 0o or 0b, with single underscores between them")
        XCTAssertEqual(error("-0x1"), "line 2: invalid number -0x1: hexadecimal, octal and binary integers take no sign")
        XCTAssertEqual(error("0x"), "line 2: invalid number 0x: hexadecimal digits must follow the 0x, 0o or 0b")
        XCTAssertEqual(error("0o8"), "line 2: invalid number 0o8: only octal digits (0-7) may follow its 0x, 0o or 0b, with single underscores between them")
        XCTAssertEqual(error("1__2"), "line 2: invalid number 1__2: underscores must sit between digits")
        XCTAssertEqual(error("_1"), "line 2: invalid number _1: underscores must sit between digits")
        XCTAssertEqual(error("1_"), "line 2: invalid number 1_: underscores must sit between digits")
        XCTAssertEqual(error("1_.2"), "line 2: invalid number 1_.2: underscores must sit between digits")
        XCTAssertEqual(error("1e_2"), "line 2: invalid number 1e_2: underscores must sit between digits")
        XCTAssertEqual(error(".5"), "line 2: invalid number .5: a float needs a digit before the point (write 0.5, not .5)")
        XCTAssertEqual(error("1."), "line 2: invalid number 1.: a float needs a digit after the point (write 1.0, not 1.)")
        XCTAssertEqual(error("1.e2"), "line 2: invalid number 1.e2: a float needs a digit after the point (write 1.0, not 1.)")
        XCTAssertEqual(error("03.14"), "line 2: invalid number 03.14: leading zeros are not allowed (write 3.14, not 03.14; 0o17 for octal)")
        XCTAssertEqual(error("007"), "line 2: invalid number 007: leading zeros are not allowed (write 3.14, not 03.14; 0o17 for octal)")
        XCTAssertEqual(error("1e"), "line 2: invalid number 1e: an exponent needs digits after the e (write 1e6)")
        XCTAssertEqual(error("1.5e2.0"), "line 2: invalid number 1.5e2.0: a float is digits, an optional .digits and an optional exponent (e.g. 3.14, 1e6, 1.2e-3)")
        XCTAssertEqual(error("9223372036854775808"), "line 2: invalid number 9223372036854775808: out of the range of a 64-bit integer (-9223372036854775808 to 9223372036854775807)")
        XCTAssertEqual(error("-9223372036854775809"), "line 2: invalid number -9223372036854775809: out of the range of a 64-bit integer (-9223372036854775808 to 9223372036854775807)")
        XCTAssertEqual(error("1e999"), "line 2: invalid number 1e999: out of the range of a 64-bit float")
        XCTAssertEqual(error("in_f"), "line 2: invalid value in_f (strings need quotes)")
    }

    func testByteOrderMarkIsNoPartOfTheDocument() throws {
        let t = try TOMLParser.parse(bytes: [0xEF, 0xBB, 0xBF] + Array("a = 1\n".utf8))
        XCTAssertEqual(t["a"], .integer(1))
        XCTAssertThrowsError(try TOMLParser.parse(bytes: Array("a = 1\n".utf8) + [0xEF, 0xBB, 0xBF]), "only at the start")
    }

    func testControlCharactersAndLoneCarriageReturnsAreRefusedWithTheirLine() {
        func error(_ text: String) -> String { TOMLProbe.error(document: text) }
        XCTAssertEqual(error("a = 1\nb = \"x\u{7f}\""),
                       "line 2: control character U+007F in a string; TOML allows only tab there (write escapes such as \\u0000 in basic strings)")
        XCTAssertEqual(error("a = 1 # x\u{0}\n"),
                       "line 1: control character U+0000 in a comment; TOML allows only tab there (write escapes such as \\u0000 in basic strings)")
        XCTAssertEqual(error("a = 1\n# x\ry = 2\n"),
                       "line 2: control character U+000D in a comment; TOML allows only tab there (write escapes such as \\u0000 in basic strings)")
        XCTAssertEqual(error("a = '''x\u{1f}'''"),
                       "line 1: control character U+001F in a string; TOML allows only tab there (write escapes such as \\u0000 in basic strings)")
        XCTAssertEqual(error("a = \"\"\"x\r\ny\"\"\"\r\nb = 1\r\n"), "accepted", "CRLF is a line break in a multi-line string")
        XCTAssertEqual(error("\"\"\"k\"\"\" = 1"), "line 1: a key cannot be a multi-line string; quote it with one '\"' on each side")
        XCTAssertEqual(error("a = \"\\u+041\""),
                       "line 1: invalid unicode escape: \\u takes 4 and \\U 8 hex digits naming a Unicode scalar (not a surrogate)")
        XCTAssertEqual(error("a = '''six: ''''''"), "line 1: unexpected ''' after the value; one key = value per line")
        XCTAssertEqual(error("a = \"\\e\""), #"line 1: invalid escape \e; TOML 1.0 knows \b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX"#)
        XCTAssertEqual(error("a = \"\\\u{1}\""), #"line 1: invalid escape \ before byte 0x1; TOML 1.0 knows \b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX"#)
    }

    func testDottedKeysStayOutOfTablesAHeaderDefined() {
        func error(_ text: String) -> String { TOMLProbe.error(document: text) }
        XCTAssertEqual(error("[a.b.c]\nz = 9\n[a]\nb.c.t = 1"),
                       "line 4: a dotted key cannot add to table c, which a [header] defined; write the key under that header")
        XCTAssertEqual(error("[fruit]\napple.color = 1\n[fruit.apple]"), "line 3: [fruit.apple] is defined twice (dotted keys defined it before)")
        XCTAssertEqual(error("[fruit]\napple.color = 1\n[fruit.apple.texture]\nsmooth = true"), "accepted", "a header may add a table below")
        XCTAssertEqual(error("[a.b.c]\n[a]\nb.d = 1"), "accepted", "[a.b.c] made a.b on the way, not by defining it")
        XCTAssertEqual(error("[[x.y]]\n[x]\ny.z = 1"),
                       "line 3: a dotted key cannot add to the array of tables y; write the key under its [[y]] header")
    }
}
