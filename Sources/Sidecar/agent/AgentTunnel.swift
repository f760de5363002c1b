import Logging
import NIOCore
import NIOPosix
import Protocol

/// The agent's side of one tunnel connection (HTTP/2 server): answers the control stream
/// with its services and connects every CONNECT stream to the service's upstream.
final class AgentTunnel: TunnelConnectionDelegate {
    private let agent: AgentContext
    private var control: ControlStream?

    init(agent: AgentContext) {
        self.agent = agent
    }

    func tunnelEstablished(_ connection: TunnelConnection) {}

    func tunnel(_ connection: TunnelConnection, incomingStream id: Int32, headers: [HeaderField], endStream: Bool)
        -> TunnelStreamHandler? {
        switch (headers[":method"], headers[":path"]) {
        case ("POST", ControlStreamHeaders.path):
            return openControl(connection, id: id)
        case ("CONNECT", _):
            return openTCP(connection, id: id, headers: headers)
        default:
            refuse(connection, id: id, status: 405, reason: "unsupported stream")
            return nil
        }
    }

    private func openControl(_ connection: TunnelConnection, id: Int32) -> TunnelStreamHandler {
        let control = ControlStream(connection: connection)
        control.streamID = id
        let logger = agent.logger
        control.onMessage = { message in
            switch message {
            case .registered(let accepted, let rejected):
                logger.info("services registered", metadata: ["accepted": "\(accepted.joined(separator: ","))"])
                for r in rejected {
                    logger.error("gateway rejected service", metadata: ["service": "\(r.name)", "reason": "\(r.reason)"])
                }
            case .draining:
                logger.notice("gateway is draining")
            case .register:
                break
            }
        }
        control.onFailure = { [unowned connection] reason in connection.close(reason: "control stream: \(reason)") }
        connection.respond(stream: id, headers: [HeaderField(":status", "200")], endStream: false)
        control.send(.register(agent.config.services.map(ServiceDeclaration.init)))
        self.control = control
        return control
    }

    private func openTCP(_ connection: TunnelConnection, id: Int32, headers: [HeaderField]) -> TunnelStreamHandler? {
        let name = headers[":authority"] ?? ""
        guard let service = agent.config.service(named: name) else {
            refuse(connection, id: id, status: 404, reason: "unknown service \"\(name)\"")
            return nil
        }
        let link = TunnelStreamLink(connection: connection)
        link.streamID = id
        let loop = connection.eventLoop!
        let linkRef = link.ref
        let bridge = StreamSocketBridge(link: linkRef)
        let boundBridge = NIOLoopBound(bridge, eventLoop: loop)
        let client = headers["fastgw-client"] ?? "?"
        let logger = agent.logger
        let started = NIODeadline.now()
        bridge.onClose = { summary in
            logger.debug("upstream connection closed", metadata: [
                "service": "\(service.name)", "client": "\(client)",
                "bytes_in": "\(summary.bytesToSocket)", "bytes_out": "\(summary.bytesFromSocket)",
                "duration_ms": "\((NIODeadline.now() - started).nanoseconds / 1_000_000)",
                "aborted": "\(summary.abortReason ?? "no")",
            ])
        }

        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(TimeAmount(service.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.recvAllocator, value: SocketTuning.recvAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(boundBridge.value)
                }
            }
        let connecting: EventLoopFuture<Channel>
        switch service.upstream {
        case .tcp(let hp): connecting = bootstrap.connect(host: hp.host, port: hp.port)
        case .unix(let path): connecting = bootstrap.connect(unixDomainSocketPath: path)
        }
        let me = NIOLoopBound(self, eventLoop: loop)
        let conn = NIOLoopBound(connection, eventLoop: loop)
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .success:
                link.attach(LoopBoundRef(boundBridge.value, eventLoop: loop))
                conn.value.respond(stream: id, headers: [HeaderField(":status", "200")], endStream: false)
            case .failure(let error):
                let (status, reason) = Self.classify(error, upstream: service.upstream)
                logger.warning("upstream connect failed", metadata: [
                    "service": "\(service.name)", "client": "\(client)", "status": "\(status)", "reason": "\(reason)",
                ])
                me.value.refuse(conn.value, id: id, status: status, reason: reason)
            }
        }
        return link
    }

    /// 502 for a refused or unreachable upstream, 504 for a connect timeout.
    static func classify(_ error: Error, upstream: UpstreamAddress) -> (Int, String) {
        if case ChannelError.connectTimeout = error {
            return (504, "upstream \(upstream) did not answer in time")
        }
        if let e = error as? NIOConnectionError, let first = e.connectionErrors.first {
            return (502, "upstream \(upstream): \(Self.describe(first.error))")
        }
        return (502, "upstream \(upstream): \(Self.describe(error))")
    }

    /// `Connection refused` rather than NIO's wrapped description.
    private static func describe(_ error: Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }

    /// Answers with an error status and ends the stream. The gateway resets the stream when
    /// it reads a status other than 200 (an RST from here could overtake the HEADERS).
    private func refuse(_ connection: TunnelConnection, id: Int32, status: Int, reason: String) {
        connection.respond(stream: id, headers: [
            HeaderField(":status", String(status)), HeaderField("fastgw-reason", reason),
        ], endStream: true)
    }

    func tunnelReceivedGoaway(_ connection: TunnelConnection) {
        agent.logger.notice("gateway sent GOAWAY")
    }

    func tunnelClosed(_ connection: TunnelConnection, reason: String) {
        control = nil
    }
}
