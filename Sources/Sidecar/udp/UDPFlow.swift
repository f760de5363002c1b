import NIOCore
import Protocol
import Synchronization

/// One client address's flow on a gateway UDP port: the tunnel stream carrying it and what
/// the port's loop needs to expire it. The stream's loop records activity and the end.
final class UDPFlow: Sendable {
    let service: String
    /// The client address (the flow table's key).
    let client: SocketAddress
    /// The tunnel connection's loop, where the flow's stream link lives.
    let loop: EventLoop
    /// Set on `loop` when the stream is opened; tasks queued before it run after it (FIFO).
    private let box: NIOLoopBoundBox<DatagramStreamLink?>
    /// Gives the flow's places in connection-counting policies back, once.
    private let release: Mutex<(@Sendable () -> Void)?>
    private let lastActive: Atomic<UInt64>
    /// The agent answered 200.
    let answered = Atomic(false)
    /// The stream is over (refused, reset, tunnel gone): the next datagram starts a new flow.
    let ended = Atomic(false)
    /// The agent refused the stream: the client's next datagrams are dropped for a while
    /// (`UDPFlowTable.refusalMemory`) instead of each opening a new stream.
    let refused = Atomic(false)
    let started: UInt64

    init(service: String, client: SocketAddress, loop: EventLoop, release: @escaping @Sendable () -> Void) {
        self.service = service
        self.client = client
        self.loop = loop
        self.box = .makeEmptyBox(valueType: DatagramStreamLink.self, eventLoop: loop)
        self.release = Mutex(release)
        started = NIODeadline.now().uptimeNanoseconds
        lastActive = Atomic(started)
    }

    /// On `loop`: the stream link, once it exists.
    func setLink(_ link: DatagramStreamLink) {
        box.value = link
    }

    /// Runs `body` with the stream link on its loop (inline when already there).
    func withLink(_ body: @escaping @Sendable (DatagramStreamLink) -> Void) {
        if loop.inEventLoop {
            if let link = box.value { body(link) }
        } else {
            loop.execute { if let link = self.box.value { body(link) } }
        }
    }

    func touch() {
        lastActive.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
    }

    /// Seconds of uptime of the last datagram either way.
    var lastActiveSeconds: Double { Double(lastActive.load(ordering: .relaxed)) / 1e9 }

    func releasePolicies() {
        let r = release.withLock { r -> (@Sendable () -> Void)? in
            defer { r = nil }
            return r
        }
        r?()
    }
}

extension ConnectionAddresses {
    /// A datagram's client and the address it was sent to (the port's own; UDP listeners
    /// take no PROXY header).
    init(datagramFrom client: SocketAddress, to local: SocketAddress?) {
        peer = client.ipEndpoint
        self.client = peer
        destination = local?.ipEndpoint
        clientNamed = true
    }
}
