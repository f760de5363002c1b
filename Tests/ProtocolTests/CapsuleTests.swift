import Protocol
import XCTest

final class CapsuleTests: XCTestCase {
    /// Feeds `bytes` in pieces of `size`; returns the payloads, or the failure.
    private func decode(_ bytes: [UInt8], size: Int = .max, decoder: inout CapsuleDecoder, tally: inout CapsuleDecoder.Tally)
        -> Result<[[UInt8]], CapsuleDecoder.Failure>
    {
        var out: [[UInt8]] = []
        var i = 0
        repeat {
            let end = size >= bytes.count - i ? bytes.count : i + size
            let piece = Array(bytes[i..<end])
            var failure: CapsuleDecoder.Failure?
            piece.withUnsafeBytes { raw in
                do {
                    try decoder.feed(raw, tally: &tally) { out.append(Array($0)) }
                } catch {
                    failure = error as? CapsuleDecoder.Failure
                }
            }
            if let failure { return .failure(failure) }
            i = end
        } while i < bytes.count
        return .success(out)
    }

    private func decode(_ bytes: [UInt8], size: Int = .max) -> Result<[[UInt8]], CapsuleDecoder.Failure> {
        var d = CapsuleDecoder()
        var t = CapsuleDecoder.Tally()
        return decode(bytes, size: size, decoder: &d, tally: &t)
    }

    func testVarintsRoundTripAtEveryLength() {
        for v: UInt64 in [0, 37, 63, 64, 15_293, 16_383, 16_384, 494_878_333, (1 << 30) - 1, 1 << 30, 151_288_809_941_952_652, QUICVarint.max] {
            var out: [UInt8] = []
            QUICVarint.append(v, to: &out)
            let read = out.withUnsafeBytes { QUICVarint.read($0, at: 0) }
            XCTAssertEqual(read?.value, v)
            XCTAssertEqual(read?.length, out.count)
            // One byte short: not a value yet.
            XCTAssertNil(out.dropLast().withUnsafeBytes { QUICVarint.read(UnsafeRawBufferPointer($0), at: 0) })
        }
        // RFC 9000 §A.1's examples.
        var out: [UInt8] = []
        QUICVarint.append(15_293, to: &out)
        XCTAssertEqual(out, [0x7b, 0xbd])
    }

    func testHeaderWrittenInPlaceMatches() {
        for n in [0, 1, 62, 63, 16_382, 16_383, 20_000, Capsule.maxDatagramPayload] {
            var out = [UInt8](repeating: 0xee, count: Capsule.maxDatagramHeader)
            let written = out.withUnsafeMutableBytes { Capsule.writeDatagramHeader(payloadLength: n, into: $0) }
            XCTAssertEqual(Array(out.prefix(written)), Capsule.datagramHeader(payloadLength: n), "length \(n)")
        }
    }

    func testDatagramsKeepTheirBoundariesInAnyPieces() {
        let payloads: [[UInt8]] = [Array("a".utf8), [], Array(repeating: 7, count: 70), Array(repeating: 9, count: 20_000)]
        let stream = payloads.flatMap(Capsule.datagram)
        XCTAssertEqual(Capsule.datagram([1, 2]), [0x00, 0x03, 0x00, 1, 2])
        for size in [1, 2, 3, 7, 64, 1000, stream.count] {
            XCTAssertEqual(try decode(stream, size: size).get(), payloads, "pieces of \(size)")
        }
    }

    func testLargestDatagramPassesAndLargerIsRefusedBeforeBuffering() {
        let largest = Array(repeating: UInt8(1), count: Capsule.maxDatagramPayload)
        XCTAssertEqual(try decode(Capsule.datagram(largest), size: 4096).get(), [largest])
        // A head claiming one byte more fails on the head alone.
        var head: [UInt8] = [0x00]
        QUICVarint.append(UInt64(Capsule.maxDatagramValue + 1), to: &head)
        var d = CapsuleDecoder()
        var t = CapsuleDecoder.Tally()
        guard case .failure = decode(head, decoder: &d, tally: &t) else { return XCTFail("accepted") }
        XCTAssertEqual(d.buffered, 0)
        // And the decoder stays failed.
        guard case .failure = decode(Capsule.datagram([1]), decoder: &d, tally: &t) else { return XCTFail("recovered") }
        // A huge length varint too.
        guard case .failure = decode([0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) else { return XCTFail("accepted") }
    }

    func testPartialCapsuleMemoryIsBoundedByItsOwnSize() {
        // The largest capsule fed a byte at a time: its buffer never takes more than the
        // capsule (an array growing by doubling would reach 128 KiB).
        let largest = Capsule.datagram(Array(repeating: UInt8(3), count: Capsule.maxDatagramPayload))
        XCTAssertEqual(largest.count, CapsuleDecoder.maxPartial)
        var d = CapsuleDecoder()
        var t = CapsuleDecoder.Tally()
        var most = 0
        for (i, byte) in largest.enumerated() {
            var got = 0
            [byte].withUnsafeBytes { raw in try? d.feed(raw, tally: &t) { _ in got += 1 } }
            most = max(most, d.reserved)
            XCTAssertEqual(got, i == largest.count - 1 ? 1 : 0)
        }
        XCTAssertLessThanOrEqual(most, CapsuleDecoder.maxPartial + 64)
        XCTAssertEqual(d.reserved, 0)
        // A small capsule split in two holds a small buffer.
        var e = CapsuleDecoder()
        let small = Capsule.datagram(Array(repeating: 1, count: 100))
        small[..<50].withUnsafeBytes { raw in try? e.feed(raw, tally: &t) { _ in } }
        XCTAssertLessThanOrEqual(e.reserved, 200)
        XCTAssertEqual(e.chargeable, 0)
        // A datagram of a usual MTU split in two: nothing charged to the shared budget.
        var f = CapsuleDecoder()
        let mtu = Capsule.datagram(Array(repeating: 2, count: 1500))
        mtu[..<700].withUnsafeBytes { raw in try? f.feed(raw, tally: &t) { _ in } }
        XCTAssertGreaterThan(f.reserved, 700)
        XCTAssertEqual(f.chargeable, 0)
        // A large partial capsule: all but the first 2 KiB charged.
        var g = CapsuleDecoder()
        largest[..<30_000].withUnsafeBytes { raw in try? g.feed(raw, tally: &t) { _ in } }
        XCTAssertEqual(g.chargeable, g.reserved - CapsuleDecoder.unchargedPartial)
        XCTAssertGreaterThan(g.chargeable, 60_000)
    }

    func testUnknownCapsulesAreSkippedWithoutBuffering() {
        // Type 0x2a with a 2^40-byte value: streamed past, never held.
        var huge: [UInt8] = []
        QUICVarint.append(0x2a, to: &huge)
        QUICVarint.append(1 << 40, to: &huge)
        var d = CapsuleDecoder()
        var t = CapsuleDecoder.Tally()
        XCTAssertEqual(try decode(huge + Array(repeating: 0, count: 100_000), size: 999, decoder: &d, tally: &t).get(), [])
        XCTAssertEqual(d.buffered, 0)
        XCTAssertEqual(t.skippedCapsules, 1)
        XCTAssertFalse(d.atBoundary)
        // A small unknown capsule between datagrams, and a datagram with context id 5.
        var small: [UInt8] = []
        QUICVarint.append(0x1234, to: &small)
        small += [0x02, 0xaa, 0xbb]
        let other: [UInt8] = [0x00, 0x02, 0x05, 0xcc]
        for size in [1, 2, 100] {
            d = CapsuleDecoder()
            t = CapsuleDecoder.Tally()
            let stream = Capsule.datagram([1]) + small + other + Capsule.datagram([2])
            XCTAssertEqual(try decode(stream, size: size, decoder: &d, tally: &t).get(), [[1], [2]])
            XCTAssertEqual(t.skippedCapsules, 1)
            XCTAssertEqual(t.unknownContexts, 1)
            XCTAssertTrue(d.atBoundary)
        }
    }

    func testTruncatedCapsuleIsNotABoundaryAndEmptyValueIsRefused() {
        var d = CapsuleDecoder()
        var t = CapsuleDecoder.Tally()
        XCTAssertEqual(try decode(Array(Capsule.datagram([1, 2, 3]).dropLast()), decoder: &d, tally: &t).get(), [])
        XCTAssertFalse(d.atBoundary)
        XCTAssertEqual(d.buffered, 5)
        guard case .failure = decode([0x00, 0x00]) else { return XCTFail("a DATAGRAM capsule without a context id") }
    }

    func testConnectUDPHeaders() {
        let h = ConnectUDP.requestHeaders(service: "dns", port: 53)
        XCTAssertTrue(ConnectUDP.isFlow(h))
        XCTAssertEqual(h[":path"], "/.well-known/masque/udp/dns/53/")
        XCTAssertEqual(h["capsule-protocol"], "?1")
        // A public client's `Upgrade: connect-udp` to an http service is not a flow.
        XCTAssertFalse(ConnectUDP.isFlow(h + [HeaderField("fastgw-service", "web")]))
    }
}

final class UDPFlowTableTests: XCTestCase {
    private let a = ClientKey(IPAddress("192.0.2.1")!)
    private let b = ClientKey(IPAddress("192.0.2.2")!)

    func testLimitsInTotalAndPerClient() {
        var t = UDPFlowTable<Int, String>(limits: .init(maxFlows: 3, maxFlowsPerClient: 2, idleTimeout: 60))
        XCTAssertNil(t.admission(client: a))
        t.insert("a1", key: 1, client: a)
        t.insert("a2", key: 2, client: a)
        XCTAssertEqual(t.admission(client: a), .clientFlowLimit)
        XCTAssertNil(t.admission(client: b))
        t.insert("b1", key: 3, client: b)
        XCTAssertEqual(t.admission(client: b), .flowLimit)
        XCTAssertEqual(t.remove(1), "a1")
        XCTAssertNil(t.admission(client: a))
        XCTAssertEqual(t.clients, 2)
        t.remove(2)
        XCTAssertEqual(t.clients, 1)
        XCTAssertEqual(t[3], "b1")
        XCTAssertEqual(t.removeAll(), ["b1"])
        XCTAssertEqual(t.count, 0)
    }

    func testIdleAndFinishedFlowsExpire() {
        var t = UDPFlowTable<Int, Int>(limits: .init(maxFlows: 10, maxFlowsPerClient: 10, idleTimeout: 5))
        for k in 0..<4 { t.insert(k, key: k, client: a) }
        // Flow k was last active at time 10 * k; flow 3 is over.
        let expired = t.expire(now: 24, lastActive: { Double($0) * 10 }, done: { $0 == 3 }).sorted()
        XCTAssertEqual(expired, [0, 1, 3])
        XCTAssertEqual(t.count, 1)
        XCTAssertNil(t.admission(client: a))
    }

    func testFullTableEvictsTheLeastRecentlyActiveFlows() {
        var t = UDPFlowTable<Int, Int>(limits: .init(maxFlows: 128, maxFlowsPerClient: 200, idleTimeout: 60))
        // Flow k was last active at time k: flows 0 and 1 are the oldest.
        for k in 0..<128 { t.insert(k, key: k, client: a) }
        XCTAssertEqual(t.admission(client: b), .flowLimit)
        XCTAssertEqual(t.makeRoom(lastActive: { Double($0) }).sorted(), [0, 1])
        XCTAssertNil(t.admission(client: b))
        XCTAssertEqual(t.count, 126)
        // Nothing is evicted while there is room.
        XCTAssertEqual(t.makeRoom(lastActive: { Double($0) }), [])
        // A per-client cap is a refusal, never an eviction.
        var u = UDPFlowTable<Int, Int>(limits: .init(maxFlows: 2, maxFlowsPerClient: 1, idleTimeout: 60))
        u.insert(0, key: 0, client: a)
        XCTAssertEqual(u.admission(client: a), .clientFlowLimit)
    }

    func testRefusedAddressesAreRememberedForAWhileInABoundedTable() {
        var t = UDPFlowTable<Int, Int>(limits: .init(maxFlows: 4, maxFlowsPerClient: 4, idleTimeout: 60, refusalMemory: 5))
        t.rememberRefusal(1, now: 100)
        XCTAssertTrue(t.isRefused(1, now: 104.9))
        XCTAssertFalse(t.isRefused(2, now: 104.9))
        XCTAssertFalse(t.isRefused(1, now: 105))
        XCTAssertEqual(t.refusedCount, 0)
        for k in 0..<10 { t.rememberRefusal(k, now: 200) }
        XCTAssertEqual(t.refusedCount, 4)
        // A reload that changes max_udp_flows sizes the memory anew.
        t.limits.maxFlows = 64
        XCTAssertEqual(t.refusedCapacity, 64)
        for k in 0..<100 { t.rememberRefusal(k, now: 300) }
        XCTAssertEqual(t.refusedCount, 64)
    }

    /// A large full table gives up exactly its n oldest flows (a bounded heap, not a sort),
    /// whatever order they were inserted in and with equal ages among them.
    func testMakeRoomPicksTheOldestOfALargeTable() {
        let a = ClientKey(IPAddress("192.0.2.1")!)
        var t = UDPFlowTable<Int, Int>(limits: .init(maxFlows: 64_000, maxFlowsPerClient: 64_000, idleTimeout: 60))
        var ages = Array(0..<64_000)
        ages.shuffle()
        for k in ages { t.insert(k, key: k, client: a) }
        // Flow k was last active at k / 2: pairs share an age.
        let evicted = t.makeRoom(lastActive: { Double($0 / 2) })
        XCTAssertEqual(evicted.sorted(), Array(0..<1000))
        XCTAssertEqual(t.count, 63_000)
    }
}

final class UDPConfigTests: XCTestCase {
    private func agent(_ services: String) -> Result<AgentConfig, ConfigError> {
        AgentConfig.parse(text: """
            [agent]
            name = "a"
            token = "0123456789abcdef0123"
            gateways = ["gw:7443"]
            \(services)
            """, file: "agent.toml") { _ in throw POSIXErrorStub(path: "") }
    }

    func testUDPServiceSharesAPortNumberWithATCPOne() throws {
        let c = try agent("""
            [[service]]
            name = "dns"
            type = "udp"
            upstream = "127.0.0.1:53"
            remote_port = 53
            [[service]]
            name = "dns-tcp"
            upstream = "127.0.0.1:53"
            remote_port = 53
            """).get()
        XCTAssertEqual(c.services.map(\.kind), [.udp, .tcp])
        XCTAssertEqual(ServiceDeclaration(c.services[0]).type, "udp")
    }

    func testUDPServiceErrorsNameTheirLines() {
        guard case .failure(let e) = agent("""
            [[service]]
            name = "u"
            type = "udp"
            upstream = "unix:/run/u.sock"
            hosts = ["x"]
            [[service]]
            name = "v"
            type = "udp"
            upstream = "127.0.0.1:1"
            remote_port = 9
            [[service]]
            name = "w"
            type = "udp"
            upstream = "127.0.0.1:2"
            remote_port = 9
            """) else { return XCTFail("accepted") }
        let text = e.description
        XCTAssertTrue(text.contains("agent.toml:8: service \"u\": a udp service's upstream is host:port"), text)
        XCTAssertTrue(text.contains("hosts does not apply to udp services"), text)
        XCTAssertTrue(text.contains("remote_port is required for a udp service"), text)
        XCTAssertTrue(text.contains("remote_port 9 is already used by another udp service"), text)
    }

    func testGatewayUDPGrantsAndLimits() throws {
        let f = GatewayConfigFixture()
        let c = try f.parse("""
            allow_ports = [53]
            allow_udp_ports = [53, 5353]
            [limits]
            udp_idle_timeout = "10s"
            max_udp_flows = 100
            max_udp_flows_per_ip = 5
            """).get()
        XCTAssertEqual(c.agents[0].allowUDPPorts, [53, 5353])
        XCTAssertEqual(c.udpPorts.map(\.name), ["udp-53", "udp-5353"])
        XCTAssertEqual(c.tcpPorts.map(\.name), ["tcp-53"])
        XCTAssertEqual(c.limits.udpIdleTimeout, .seconds(10))
        XCTAssertEqual(c.limits.maxUDPFlows, 100)
        XCTAssertEqual(c.limits.maxUDPFlowsPerIP, 5)
        XCTAssertEqual(LimitsConfig().udpIdleTimeout, .seconds(60))
        XCTAssertEqual(LimitsConfig().maxUDPFlows, 4096)
        XCTAssertEqual(LimitsConfig().maxUDPFlowsPerIP, 64)
        XCTAssertEqual(f.errors("allow_udp_ports = [0]\n[limits]\nudp_idle_timeout = \"0s\"\n").count, 2)
    }

    func testUDPRoutesNeedTheUDPGrant() {
        var grant = GatewayConfig.AgentGrant(name: "a", token: "t", allowPorts: [53], allowHosts: [])
        var table = TCPRouteTable<Int>(transport: .udp)
        let dns = ServiceDeclaration(name: "dns", type: "udp", remotePort: 53)
        var r = table.register(connection: 1, grant: grant, services: [dns])
        XCTAssertEqual(r.rejected.map(\.reason), ["remote_port 53 is not in allow_udp_ports of agent \"a\""])
        grant.allowUDPPorts = [53]
        r = table.register(connection: 1, grant: grant, services: [dns])
        XCTAssertEqual(r.accepted, ["dns"])
        XCTAssertEqual(table.entries(port: 53).map(\.service), ["dns"])
        // The tcp table does not take it, nor the udp table a tcp service.
        var tcp = TCPRouteTable<Int>()
        XCTAssertEqual(tcp.register(connection: 1, grant: grant, services: [dns]).accepted, [])
        XCTAssertEqual(table.register(connection: 2, grant: grant, services: [ServiceDeclaration(name: "t", type: "tcp", remotePort: 53)]).accepted, [])
    }

    func testDatagramSocketsMatchOnlyUDPListeners() {
        let inherited = [InheritedListener(fd: 3, name: "x", address: .udp(host: "0.0.0.0", port: 53)),
                         InheritedListener(fd: 4, name: "y", address: .inet(host: "0.0.0.0", port: 53))]
        let plan = ListenerMatching.plan(wanted: [
            WantedListener(name: "tcp-53", addresses: [.inet(host: "0.0.0.0", port: 53)]),
            WantedListener(name: "udp-53", addresses: [.inet(host: "0.0.0.0", port: 53).asDatagram]),
        ], inherited: inherited)
        XCTAssertEqual(plan.claims["udp-53"]?.fd, 3)
        XCTAssertEqual(plan.claims["tcp-53"]?.fd, 4)
        XCTAssertEqual(ListenAddress.udp(host: "::", port: 53).description, "udp [::]:53")
    }
}
