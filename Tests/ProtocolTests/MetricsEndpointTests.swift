import Protocol
import XCTest

final class MetricsEndpointTests: XCTestCase {
    private func head(_ line: String) -> HTTPHead {
        HTTPHead(startLine: line.split(separator: " ").map(String.init), fields: [("Host", "x")])
    }

    func testRoutes() throws {
        guard case .success(let (r, headOnly)) = MetricsEndpoint.route(head("GET /metrics HTTP/1.1")) else { return XCTFail() }
        XCTAssertEqual(r, .metrics)
        XCTAssertFalse(headOnly)
        guard case .success(let (r2, h2)) = MetricsEndpoint.route(head("HEAD /readyz?verbose HTTP/1.0")) else { return XCTFail() }
        XCTAssertEqual(r2, .ready)
        XCTAssertTrue(h2)
        guard case .success(let (r3, _)) = MetricsEndpoint.route(head("GET /healthz HTTP/1.1")) else { return XCTFail() }
        XCTAssertEqual(r3, .health)
    }

    func testRefusals() {
        for (line, status) in [("GET / HTTP/1.1", 404), ("POST /metrics HTTP/1.1", 405), ("GET /metrics HTTP/2.0", 400), ("GET /metrics/x HTTP/1.1", 404)] {
            guard case .failure(let a) = MetricsEndpoint.route(head(line)) else { return XCTFail(line) }
            XCTAssertEqual(a.status, status, line)
        }
    }

    func testAnswersCloseAndHeadHasNoBody() {
        let ok = MetricsEndpoint.probe(nil, headOnly: false)
        XCTAssertEqual(String(decoding: ok.bytes, as: UTF8.self),
                       "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nCache-Control: no-store\r\nConnection: close\r\n\r\nok\n")
        let down = MetricsEndpoint.probe("draining", headOnly: true)
        XCTAssertEqual(down.status, 503)
        XCTAssertTrue(String(decoding: down.bytes, as: UTF8.self).hasSuffix("Content-Length: 9\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"))
    }

    func testBuckets() {
        XCTAssertEqual(LatencyBuckets.index(of: 0), 0)
        XCTAssertEqual(LatencyBuckets.index(of: 0.001), 0)
        XCTAssertEqual(LatencyBuckets.index(of: 0.0011), 1)
        XCTAssertEqual(LatencyBuckets.index(of: 10), LatencyBuckets.bounds.count - 1)
        XCTAssertEqual(LatencyBuckets.index(of: 11), LatencyBuckets.bounds.count)
    }

    func testHistogramExposition() {
        var counts = [Int](repeating: 0, count: LatencyBuckets.bounds.count + 1)
        counts[0] = 2
        counts[2] = 1
        counts[LatencyBuckets.bounds.count] = 1
        var r = StatsReport(role: .gateway)
        r.add("service_first_byte_seconds", histogram: "help", by: "service", ["web": HistogramSnapshot(counts: counts, sum: 12.5)])
        let text = r.prometheus()
        XCTAssertTrue(text.hasPrefix("# HELP fastgw_service_first_byte_seconds help\n# TYPE fastgw_service_first_byte_seconds histogram\n"))
        XCTAssertTrue(text.contains("fastgw_service_first_byte_seconds_bucket{service=\"web\",le=\"0.001\"} 2\n"))
        XCTAssertTrue(text.contains("fastgw_service_first_byte_seconds_bucket{service=\"web\",le=\"0.005\"} 3\n"))
        XCTAssertTrue(text.contains("fastgw_service_first_byte_seconds_bucket{service=\"web\",le=\"10\"} 3\n"))
        XCTAssertTrue(text.contains("fastgw_service_first_byte_seconds_bucket{service=\"web\",le=\"+Inf\"} 4\n"))
        XCTAssertTrue(text.hasSuffix("fastgw_service_first_byte_seconds_sum{service=\"web\"} 12.5\nfastgw_service_first_byte_seconds_count{service=\"web\"} 4\n"))
    }

    func testMetricsConfig() throws {
        let c = try GatewayConfigFixture().parse("[metrics]\nlisten = \"127.0.0.1:9464\"\nallow = [\"10.0.0.0/8\"]\n").get()
        XCTAssertEqual(c.metrics?.listen, HostPort(host: "127.0.0.1", port: 9464))
        XCTAssertEqual(c.metrics?.allow.blocks.map(\.description), ["10.0.0.0/8"])
        XCTAssertEqual(GatewayConfigFixture().errors("[metrics]\nallow = [\"x\"]\nport = 1\n"), [
            "/etc/fastgw/gateway.toml:7: [metrics] listen is required (for example \"127.0.0.1:9464\")",
            "/etc/fastgw/gateway.toml:8: allow: \"x\": not an address or block (examples: 192.0.2.7, 10.0.0.0/8, 2001:db8::/32)",
            "/etc/fastgw/gateway.toml:9: unknown key \"port\" in [metrics]",
        ])
    }
}
