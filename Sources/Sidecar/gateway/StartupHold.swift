import Logging
import NIOCore

/// Right after start no agent has connected yet, and a public connection accepted now would
/// find nobody serving its port and be closed. So public listeners start with accepting
/// paused: the kernel queues the connections (in systemd's socket across a restart) and each
/// listener resumes once an agent serves it (a TCP port: its service; an HTTP listener: every
/// agent granted hosts has registered its routes), or when `wait` has passed.
struct StartupHold: Sendable {
    let context: GatewayContext
    let logger: Logger
    let wait: TimeAmount
    /// How often held ports are checked against the registry while the hold lasts.
    static let checkInterval = TimeAmount.milliseconds(20)

    struct Held: Sendable {
        let channel: Channel
        /// For the log: `port 2222`, `listener "web"`.
        let what: String
        let served: @Sendable () -> Bool
    }

    func release(_ held: [Held], on loop: EventLoop) {
        let deadline = NIODeadline.now() + wait
        let logger = logger
        let context = context
        loop.execute {
            let pending = NIOLoopBoundBox(held, eventLoop: loop)
            loop.scheduleRepeatedTask(initialDelay: .zero, delay: Self.checkInterval) { task in
                // A drain pauses and closes the listeners itself.
                if context.isDraining {
                    pending.value.removeAll()
                    task.cancel()
                    return
                }
                let expired = NIODeadline.now() >= deadline
                pending.value.removeAll { listener in
                    let served = listener.served()
                    guard expired || served else { return false }
                    if !served {
                        logger.notice("no agent serves this listener yet; accepting anyway", metadata: ["listener": "\(listener.what)"])
                    }
                    listener.channel.setOption(.autoRead, value: true).whenFailure { _ in }
                    return true
                }
                if pending.value.isEmpty { task.cancel() }
            }
        }
    }
}
