import CNghttp2
import NIOCore
import Protocol

/// Opens the stream for one local connection on a live tunnel connection (least loaded,
/// same event loop preferred) and reports the gateway's answer.
enum VisitorStreams {
    /// Why a local connection got no stream, and the SOCKS5 reply that says so.
    struct Refusal: Error {
        let label: String
        let reason: String
        let reply: Socks5Server.Reply
    }

    /// How long a local connection waits for a live tunnel connection (at start-up, after a
    /// socket-activated start, while redialling) before it is refused.
    static let tunnelWait = TimeAmount.seconds(10)
    private static let tunnelPoll = TimeAmount.milliseconds(50)

    /// Opens the stream for `service` (and `target` for a network service). `answered` runs on
    /// the tunnel loop with nil for 200 or the refusal; the link is returned through `opened`
    /// (on the tunnel loop) before any answer can arrive, or the refusal when none could open.
    static func open(
        _ context: VisitorContext, service: String, target: String?, preferring loop: EventLoop,
        until deadline: NIODeadline = .now() + tunnelWait,
        opened: @escaping @Sendable (Result<LoopBoundRef<StreamSocketBridge.Link>, Refusal>) -> Void,
        answered: @escaping @Sendable (Refusal?) -> Void
    ) {
        let live = context.dial.slots.all.filter { $0.state == .connected && !$0.gatewayDraining }
        let pick = live.min { a, b in
            let (sa, sb) = (a.tunnel?.eventLoop === loop, b.tunnel?.eventLoop === loop)
            return sa != sb ? sa : a.streams < b.streams
        }
        guard let slot = pick, let tunnel = slot.tunnel else {
            if NIODeadline.now() < deadline, !context.isDraining {
                loop.scheduleTask(in: tunnelPoll) {
                    open(context, service: service, target: target, preferring: loop, until: deadline, opened: opened, answered: answered)
                }
                return
            }
            return opened(.failure(Refusal(label: "no_tunnel", reason: "no live tunnel connection to a gateway", reply: .networkUnreachable)))
        }
        let slots = context.dial.slots
        tunnel.run { connection in
            guard connection.takesNewStreams else {
                return opened(.failure(Refusal(label: "no_tunnel", reason: "the tunnel connection is closing", reply: .networkUnreachable)))
            }
            let link = StreamSocketBridge.Link(connection: connection)
            var fields = [HeaderField(":method", "CONNECT"), HeaderField(":authority", service)]
            if let target { fields.append(HeaderField("fastgw-target", target)) }
            link.onHeaders = { [unowned link] fields, _ in
                guard let status = fields[":status"] else { return }
                let refused = status == "200" ? nil : refusal(status: status, reason: fields["fastgw-reason"])
                // A refused stream is over: reset it so no byte of the local client follows.
                if refused != nil { link.socketFailed() }
                answered(refused)
            }
            do {
                link.streamID = try connection.openStream(headers: fields, handler: link)
            } catch {
                return opened(.failure(Refusal(label: "stream_open_failed", reason: "\(error)", reply: .generalFailure)))
            }
            slots.update(slot.key) { $0.streams += 1 }
            link.onClosed = { _ in slots.update(slot.key) { $0.streams -= 1 } }
            opened(.success(link.ref))
        }
    }

    /// The gateway's or the agent's status as a refusal: 403 not allowed (not granted, or
    /// outside a network service's `allow`), 404 unknown, 503 no agent, 502/504 unreachable.
    static func refusal(status: String, reason: String?) -> Refusal {
        let why = reason ?? "status \(status)"
        switch status {
        case "403": return Refusal(label: "not_allowed", reason: why, reply: .notAllowed)
        case "404": return Refusal(label: "unknown_service", reason: why, reply: .hostUnreachable)
        case "503": return Refusal(label: "no_agent", reason: why, reply: .networkUnreachable)
        case "502": return Refusal(label: "unreachable", reason: why, reply: .connectionRefused)
        case "504": return Refusal(label: "timeout", reason: why, reply: .hostUnreachable)
        default: return Refusal(label: "status_\(status)", reason: why, reply: .generalFailure)
        }
    }
}
