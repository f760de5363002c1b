import Logging
import NIOCore
import NIOPosix
import Protocol

#if canImport(Glibc)
import Glibc
#endif

/// The Unix control socket of either daemon (DESIGN §4): mode 0660, a stale socket file left
/// by a crashed process is replaced, a live one is never stolen.
enum ControlServer {
    /// More simultaneous clients than this are answered `ERR 503` and closed.
    static let maxConnections = 1024
    static let idleTimeout = TimeAmount.seconds(300)

    /// The bound (or inherited) socket; `close()` removes the file only if this process made it.
    struct Listening: Sendable {
        let channel: Channel
        let path: String
        let inherited: Bool

        func close() {
            try? channel.close().wait()
            if !inherited { ControlServer.remove(path: path) }
        }
    }

    /// Adopts `inherited` when systemd passed the socket (it owns the file and its mode);
    /// binds `path` otherwise.
    static func bind(
        path: String, inherited: InheritedListener?, group: EventLoopGroup, responder: ControlResponder, logger: Logger
    ) throws -> Listening {
        let bootstrap = makeBootstrap(group: group, responder: responder, logger: logger)
        if let inherited {
            let channel = try SocketActivation.adopt(inherited, with: bootstrap)
            logger.info("listening", metadata: [
                "listener": "control socket", "address": "\(inherited.address)", "activation": "fd \(inherited.fd) \(inherited.name)",
            ])
            if inherited.address != .unix(path: path) {
                logger.warning("the inherited control socket is not at the configured [control] socket path; fastgwctl needs --socket", metadata: [
                    "inherited": "\(inherited.address)", "configured": "\(path)",
                ])
            }
            return Listening(channel: channel, path: path, inherited: true)
        }
        do {
            try prepare(path: path)
        } catch {
            throw StartupError("control socket \(path): \(error)")
        }
        let channel: Channel
        do {
            channel = try bootstrap.bind(unixDomainSocketPath: path).wait()
        } catch {
            throw StartupError("control socket \(path): cannot listen: \(error)")
        }
        guard chmod(path, 0o660) == 0 else {
            let reason = String(cString: strerror(errno))
            channel.close(promise: nil)
            throw StartupError("control socket \(path): cannot set mode 0660: \(reason)")
        }
        logger.info("listening", metadata: ["listener": "control socket", "address": "\(path)"])
        return Listening(channel: channel, path: path, inherited: false)
    }

    private static func makeBootstrap(group: EventLoopGroup, responder: ControlResponder, logger: Logger) -> ServerBootstrap {
        let active = Counter()
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    active.add()
                    channel.closeFuture.whenComplete { _ in active.subtract() }
                    let sync = channel.pipeline.syncOperations
                    if active.value > maxConnections {
                        try sync.addHandler(RefuseHandler(message: "too many control connections (\(maxConnections))"))
                    } else {
                        try sync.addHandler(ControlConnectionHandler(responder: responder, logger: logger, idleTimeout: idleTimeout))
                    }
                }
            }
    }

    /// Creates the directory if needed and removes a socket file nobody answers on.
    private static func prepare(path: String) throws {
        let dir = Paths.directory(of: path)
        var st = stat()
        if stat(dir, &st) != 0 {
            guard mkdir(dir, 0o755) == 0 || errno == EEXIST else {
                throw StartupError("cannot create directory \(dir): \(String(cString: strerror(errno)))")
            }
        }
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw StartupError("exists and is not a socket; remove it or choose another [control] socket")
        }
        if socketAnswers(path) {
            throw StartupError("another process is serving this socket (is fastgw already running?)")
        }
        guard unlink(path) == 0 else {
            throw StartupError("cannot remove stale socket: \(String(cString: strerror(errno)))")
        }
    }

    private static func socketAnswers(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    /// Removes the socket file when the daemon stops, if it is still ours.
    static func remove(path: String) {
        var st = stat()
        if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
    }
}

/// Answers `ERR 503` to a client over the connection limit and closes.
private final class RefuseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let message: String

    init(message: String) {
        self.message = message
    }

    func channelActive(context: ChannelHandlerContext) {
        let bytes = context.channel.allocator.buffer(bytes: ControlReply.error(.draining(message)).encoded())
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(bytes)).whenComplete { _ in channel.close(promise: nil) }
    }
}
