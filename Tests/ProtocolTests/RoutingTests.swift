import Protocol
import XCTest

final class RoutingTests: XCTestCase {
    private let nas = GatewayConfig.AgentGrant(name: "nas", token: "t", allowPorts: [2222, 8080], allowHosts: [])
    private let lab = GatewayConfig.AgentGrant(name: "lab", token: "u", allowPorts: [2222], allowHosts: [])

    func testRegistrationIsAuthorisedAgainstGrants() {
        var table = TCPRouteTable<Int>()
        let (accepted, rejected) = table.register(connection: 1, grant: nas, services: [
            ServiceDeclaration(name: "ssh", type: "tcp", remotePort: 2222),
            ServiceDeclaration(name: "db", type: "tcp", remotePort: 5432),
            ServiceDeclaration(name: "web", type: "http", remotePort: nil),
        ])
        XCTAssertEqual(accepted, ["ssh"])
        XCTAssertEqual(rejected.map(\.reason), [
            "remote_port 5432 is not in allow_ports of agent \"nas\"",
            "type \"http\" is not supported by this gateway",
        ])
        XCTAssertEqual(table.entries(port: 2222).map(\.connection), [1])
    }

    func testSameServiceFromTwoAgentsSharesThePortButADifferentNameConflicts() {
        var table = TCPRouteTable<Int>()
        _ = table.register(connection: 1, grant: nas, services: [ServiceDeclaration(name: "ssh", type: "tcp", remotePort: 2222)])
        XCTAssertEqual(table.register(connection: 2, grant: lab, services: [ServiceDeclaration(name: "ssh", type: "tcp", remotePort: 2222)]).accepted, ["ssh"])
        let conflict = table.register(connection: 3, grant: lab, services: [ServiceDeclaration(name: "other", type: "tcp", remotePort: 2222)])
        XCTAssertEqual(conflict.rejected.first?.reason, "remote_port 2222 is already served as service \"ssh\" by agent \"nas\"")
        table.remove(connection: 1)
        XCTAssertEqual(table.entries(port: 2222).map(\.connection), [2])
        // A narrower grant (after a reload) re-checked against what connection 2 declared.
        var narrower = lab
        narrower.allowPorts = []
        let again = table.register(connection: 2, grant: narrower, services: [ServiceDeclaration(name: "ssh", type: "tcp", remotePort: 2222)])
        XCTAssertEqual(again.rejected.first?.reason, "remote_port 2222 is not in allow_ports of agent \"lab\"")
        XCTAssertEqual(table.entries(port: 2222).map(\.connection), [])
    }

    func testBalancerPicksFewestStreamsThenPreferredAndSkipsUnusable() {
        let loads = ["a": 3, "b": 1, "c": 1]
        XCTAssertEqual(StreamBalancer.pick(["a", "b", "c"], load: { loads[$0] }, preferred: { $0 == "c" }), "c")
        XCTAssertEqual(StreamBalancer.pick(["a", "b", "c"], load: { loads[$0] }, preferred: { _ in false }), "b")
        XCTAssertEqual(StreamBalancer.pick(["a", "b"], load: { $0 == "b" ? nil : loads[$0] }, preferred: { _ in false }), "a")
        XCTAssertNil(StreamBalancer.pick(["a"], load: { _ in nil }, preferred: { _ in true }))
    }
}
