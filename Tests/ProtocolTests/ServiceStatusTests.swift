import Protocol
import XCTest

final class ServiceStatusTests: XCTestCase {
    func testGatewayServingCountsAgentsConnectionsAndStreams() {
        XCTAssertEqual(
            ServiceStatus.gateway(agents: 1, tunnelConnections: 2, publicConnections: 1, streams: 3, draining: false),
            "serving: 1 agent on 2 tunnel connections, 1 public connection, 3 streams")
        XCTAssertEqual(
            ServiceStatus.gateway(agents: 0, tunnelConnections: 0, publicConnections: 0, streams: 0, draining: false),
            "serving: 0 agents on 0 tunnel connections, 0 public connections, 0 streams")
    }

    func testGatewayDrainingSaysWhatIsLeft() {
        XCTAssertEqual(
            ServiceStatus.gateway(agents: 2, tunnelConnections: 4, publicConnections: 5, streams: 1, draining: true),
            "draining: 5 public connections, 1 stream left")
    }

    func testAgent() {
        XCTAssertEqual(
            ServiceStatus.agent(connected: 1, slots: 2, streams: 1, draining: false),
            "serving: 1/2 tunnel connections, 1 stream")
        XCTAssertEqual(
            ServiceStatus.agent(connected: 1, slots: 1, streams: 0, draining: false),
            "serving: 1/1 tunnel connection, 0 streams")
        XCTAssertEqual(
            ServiceStatus.agent(connected: 2, slots: 2, streams: 7, draining: true),
            "draining: 2 tunnel connections, 7 streams left")
    }
}
