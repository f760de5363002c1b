import Protocol
import XCTest

final class ListenerMatchingTests: XCTestCase {
    private let tunnel = WantedListener(name: "tunnel", addresses: [.inet(host: "0.0.0.0", port: 7443)])
    private let ssh = WantedListener(name: "tcp-2222", addresses: [.inet(host: "127.0.0.1", port: 2222), .inet(host: "::1", port: 2222)])
    private let control = WantedListener(name: "control", addresses: [.unix(path: "/run/fastgw/gateway.sock")])

    func testNameWinsOverAddress() {
        // Named "tunnel" but bound where the ssh listener listens: the name decides.
        let named = InheritedListener(fd: 3, name: "tunnel", address: .inet(host: "127.0.0.1", port: 2222))
        let plan = ListenerMatching.plan(wanted: [tunnel, ssh], inherited: [named])
        XCTAssertEqual(plan.claims["tunnel"], named)
        XCTAssertNil(plan.claims["tcp-2222"])
        XCTAssertEqual(plan.unmatched, [])
    }

    func testAddressMatchForUnitNamedSockets() {
        // systemd's default FileDescriptorName= is the unit name.
        let v6 = InheritedListener(fd: 3, name: "fastgw.socket", address: .inet(host: "::1", port: 2222))
        let sock = InheritedListener(fd: 4, name: "fastgw.socket", address: .unix(path: "/run/fastgw/gateway.sock"))
        let plan = ListenerMatching.plan(wanted: [tunnel, ssh, control], inherited: [v6, sock])
        XCTAssertEqual(plan.claims["tcp-2222"], v6)
        XCTAssertEqual(plan.claims["control"], sock)
        XCTAssertNil(plan.claims["tunnel"], "no socket for it: the daemon binds it itself")
    }

    func testDualStackWildcardServesIPv4Wildcard() {
        let any6 = InheritedListener(fd: 3, name: "fastgw.socket", address: .inet(host: "::", port: 7443))
        XCTAssertEqual(ListenerMatching.plan(wanted: [tunnel], inherited: [any6]).claims["tunnel"], any6)
        let otherPort = InheritedListener(fd: 3, name: "fastgw.socket", address: .inet(host: "::", port: 7444))
        XCTAssertEqual(ListenerMatching.plan(wanted: [tunnel], inherited: [otherPort]).unmatched, [otherPort])
        let specific = InheritedListener(fd: 3, name: "x", address: .inet(host: "10.0.0.1", port: 7443))
        XCTAssertEqual(ListenerMatching.plan(wanted: [tunnel], inherited: [specific]).unmatched, [specific])
    }

    func testLeftoversAreUnmatchedAndEachSocketServesOnce() {
        let a = InheritedListener(fd: 3, name: "tunnel", address: .inet(host: "0.0.0.0", port: 7443))
        let b = InheritedListener(fd: 4, name: "tunnel", address: .inet(host: "0.0.0.0", port: 7443))
        let stray = InheritedListener(fd: 5, name: "metrics", address: .inet(host: "127.0.0.1", port: 9100))
        let plan = ListenerMatching.plan(wanted: [tunnel, ssh], inherited: [a, b, stray])
        XCTAssertEqual(plan.claims["tunnel"], a)
        XCTAssertEqual(plan.unmatched, [b, stray], "a second socket with a taken name is not given to another listener")
        XCTAssertEqual(stray.description, "fd 5 (name \"metrics\", 127.0.0.1:9100)")
    }
}
