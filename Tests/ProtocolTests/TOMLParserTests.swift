import Protocol
import XCTest

final class TOMLParserTests: XCTestCase {
    func testTablesArraysAndLines() throws {
        let t = try TOMLParser.parse("""
            # comment
            title = "x" # trailing
            [tunnel]
            listen = "0.0.0.0:7443"

            [[agent]]
            name = "a"
            allow_ports = [
              1, 2,  # comment inside
              3,
            ]
            [[agent]]
            name = "b"
            limits.max = 5
            [agent.extra]
            on = true
            """)
        XCTAssertEqual(t["title"]?.string, "x")
        XCTAssertEqual(t.line(of: "tunnel"), 3)
        XCTAssertEqual(t["tunnel"]?.table?["listen"]?.string, "0.0.0.0:7443")
        XCTAssertEqual(t["tunnel"]?.table?.line(of: "listen"), 4)
        let agents = try XCTUnwrap(t["agent"]?.array)
        XCTAssertEqual(agents.count, 2)
        XCTAssertEqual(agents[0].table?["allow_ports"]?.array?.compactMap(\.int), [1, 2, 3])
        XCTAssertEqual(agents[0].table?.line, 6)
        XCTAssertEqual(agents[1].table?.line(of: "name"), 13)
        XCTAssertEqual(agents[1].table?["limits"]?.table?["max"]?.int, 5)
        XCTAssertEqual(agents[1].table?["extra"]?.table?["on"]?.bool, true, "[agent.extra] extends the last [[agent]]")
    }

    func testStringsAndNumbers() throws {
        let t = try TOMLParser.parse(#"""
            basic = "tab\there \"q\" \u00e9 \U0001F600"
            literal = 'C:\path\no escapes'
            multi = """
            line one
            line two \
               joined"""
            rawmulti = '''
            keep \n as is'''
            "quoted key" = 1
            hex = 0xff
            oct = 0o17
            bin = 0b101
            big = 1_000_000
            neg = -42
            pi = 3.25
            inline = { a = 1, b = "two" }
            """#)
        XCTAssertEqual(t["basic"]?.string, "tab\there \"q\" é 😀")
        XCTAssertEqual(t["literal"]?.string, #"C:\path\no escapes"#)
        XCTAssertEqual(t["multi"]?.string, "line one\nline two joined")
        XCTAssertEqual(t["rawmulti"]?.string, #"keep \n as is"#)
        XCTAssertEqual(t["quoted key"]?.int, 1)
        XCTAssertEqual([t["hex"], t["oct"], t["bin"], t["big"], t["neg"]].compactMap { $0?.int }, [255, 15, 5, 1_000_000, -42])
        XCTAssertEqual(t["pi"], .float(3.25))
        XCTAssertEqual(t["inline"]?.table?["b"]?.string, "two")
    }

    func testErrorsNameTheLine() {
        func error(_ text: String) -> String {
            do {
                _ = try TOMLParser.parse(text)
                return "no error"
            } catch {
                return error.description
            }
        }
        XCTAssertEqual(error("a = 1\na = 2"), "line 2: key a is defined twice")
        XCTAssertEqual(error("[t]\n[t]"), "line 2: [t] is defined twice")
        XCTAssertEqual(error("x = \"open\ny = 1"), "line 1: unterminated string")
        XCTAssertEqual(error("x = 1979-05-27T"), "line 1: a time is written HH:MM:SS with every digit, seconds included (e.g. 07:32:00); one must follow the date and its T")
        XCTAssertEqual(error("x = 1 2"), "line 1: unexpected '2' after the value; one key = value per line")
        XCTAssertEqual(error("x = bare"), "line 1: invalid value bare (strings need quotes)")
        XCTAssertEqual(error("\n\nx = [1, 2"), "line 3: unterminated array (the file ends before its ])")
        XCTAssertEqual(error("x = 1\n[x]"), "line 2: [x] is defined twice")
        XCTAssertEqual(error("t = {a = 1}\n[t.b]"), "line 2: cannot extend inline table t")
        XCTAssertEqual(error("= 1"), "line 1: unexpected '=' where a key was expected")
    }
}
