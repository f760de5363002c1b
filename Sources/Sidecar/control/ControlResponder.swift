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

/// A daemon's side of the control protocol: one implementation per role, answering the
/// commands only that role has; the commands both have are answered here.
protocol ControlResponder: Sendable {
    var role: ControlRole { get }
    var daemon: any ManagedDaemon { get }
    /// A command of this role (`agents`, `services`…); the future may complete on any loop.
    func respondToRoleCommand(_ request: ControlRequest, on loop: EventLoop) -> EventLoopFuture<ControlOutcome>
}

extension ControlResponder {
    /// Runs one request; `quit` and malformed lines never get here.
    func respond(to request: ControlRequest, on loop: EventLoop) -> EventLoopFuture<ControlOutcome> {
        if let common = CommonCommands.answer(request, role: role, logger: daemon.logger) {
            return loop.makeSucceededFuture(common)
        }
        if let managed = CommonCommands.manage(request, daemon: daemon, on: loop) {
            return managed
        }
        return respondToRoleCommand(request, on: loop)
    }
}
