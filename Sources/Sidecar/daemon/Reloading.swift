import Dispatch
import Logging
import NIOCore
import Protocol

/// How both daemons run a reload: one at a time on their serial queue (never on an event
/// loop: binding a new listener waits), framed by RELOADING=1 / READY=1, counted and logged.
struct Reloading: Sendable {
    let queue: DispatchQueue
    let notifier: ServiceNotifier
    let logger: Logger
    let succeeded: Counter
    let failed: Counter

    func run(on loop: EventLoop, _ body: @escaping @Sendable () -> Result<String, ControlError>) -> EventLoopFuture<String> {
        let promise = loop.makePromise(of: String.self)
        queue.async {
            notifier.reloading()
            defer { notifier.ready() }
            switch body() {
            case .success(let summary):
                succeeded.add()
                logger.notice("configuration reloaded", metadata: .event(.reloadSucceeded, ["summary": "\(summary)"]))
                promise.succeed(summary)
            case .failure(let error):
                failed.add()
                logger.error("reload failed; keeping the running configuration", metadata: .event(.reloadFailed, ["error": "\(error.message)"]))
                promise.fail(error)
            }
        }
        return promise.futureResult
    }
}
