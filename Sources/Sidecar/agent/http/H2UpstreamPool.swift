import NIOCore
import Protocol

/// HTTP/2 cleartext (prior knowledge) connections to the upstreams of `h2c` services, one
/// per service, shared by the streams of one tunnel connection (so it lives on that
/// connection's loop and needs no lock). Each runs in a `TunnelConnection` in the client
/// role. A connection that sent GOAWAY takes no new streams; the next stream dials anew.
final class H2UpstreamPool: TunnelConnectionDelegate {
    private enum Entry {
        case connecting([(Result<TunnelConnection, Error>) -> Void])
        case ready(TunnelConnection)
    }

    /// Upstream windows: as for the tunnel, large enough for one fast stream; the sources
    /// are paused by the tunnel's own flow control.
    static let tuning = H2Tuning(connectionWindow: 16 << 20, streamWindow: 4 << 20, sendWatermark: 256 << 10, maxConcurrentStreams: 1000)

    let loop: EventLoop
    private var entries: [String: Entry] = [:]

    init(loop: EventLoop) {
        self.loop = loop
    }

    /// A live connection to the service's upstream, dialled when there is none.
    func acquire(_ service: AgentConfig.Service, _ done: @escaping (Result<TunnelConnection, Error>) -> Void) {
        switch entries[service.name] {
        case .ready(let connection):
            done(.success(connection))
        case .connecting(var waiting):
            waiting.append(done)
            entries[service.name] = .connecting(waiting)
        case nil:
            entries[service.name] = .connecting([done])
            dial(service)
        }
    }

    private func dial(_ service: AgentConfig.Service) {
        let session: H2Session
        do {
            session = try H2Session(role: .client, tuning: Self.tuning, allocator: ByteBufferAllocator())
        } catch {
            return settle(service.name, .failure(error))
        }
        let connection = TunnelConnection(session: session, keepaliveInterval: .seconds(30), keepaliveTimeout: .seconds(20))
        connection.delegate = self
        let bound = NIOLoopBound(connection, eventLoop: loop)
        let name = service.name
        UpstreamConnector.connect(service, on: loop, handler: bound, allowHalfClosure: false)
            .assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success: settle(name, .success(bound.value))
                case .failure(let error): settle(name, .failure(error))
                }
            }
    }

    private func settle(_ name: String, _ result: Result<TunnelConnection, Error>) {
        guard case .connecting(let waiting) = entries[name] else { return }
        if case .success(let connection) = result { entries[name] = .ready(connection) } else { entries[name] = nil }
        waiting.forEach { $0(result) }
    }

    /// Forgets `connection` so that new streams dial a fresh one.
    private func retire(_ connection: TunnelConnection) {
        for (name, entry) in entries {
            if case .ready(let c) = entry, c === connection { entries[name] = nil }
        }
    }

    func closeAll() {
        for case .ready(let connection) in entries.values { connection.close(reason: "tunnel connection closed") }
        entries = [:]
    }

    // MARK: TunnelConnectionDelegate

    func tunnelEstablished(_ connection: TunnelConnection) {}

    func tunnel(_ connection: TunnelConnection, incomingStream id: Int32, headers: [HeaderField], endStream: Bool)
        -> TunnelStreamHandler?
    {
        connection.reset(stream: id)  // an upstream does not open streams (no server push either)
        return nil
    }

    func tunnelReceivedGoaway(_ connection: TunnelConnection) {
        retire(connection)
    }

    func tunnelClosed(_ connection: TunnelConnection, reason: String) {
        retire(connection)
    }
}
