import NIOCore
import Protocol

/// What a command produced: the reply, and something to run once it has been written (the
/// drain command lets the process exit only after its answer reached the client).
struct ControlOutcome: Sendable {
    var reply: ControlReply
    var afterWrite: (@Sendable () -> Void)?

    init(_ reply: ControlReply, afterWrite: (@Sendable () -> Void)? = nil) {
        self.reply = reply
        self.afterWrite = afterWrite
    }

    static func ok(_ body: String) -> ControlOutcome { ControlOutcome(.ok(body)) }
    static func error(_ e: ControlError) -> ControlOutcome { ControlOutcome(.error(e)) }
}

/// A daemon's side of the control protocol: one implementation per role.
protocol ControlResponder: Sendable {
    var role: ControlRole { get }
    /// Runs one request; `quit` and malformed lines never get here. The future may complete
    /// on any event loop.
    func respond(to request: ControlRequest, on loop: EventLoop) -> EventLoopFuture<ControlOutcome>
}
