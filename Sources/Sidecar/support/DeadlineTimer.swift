import NIOCore

/// One deadline with at most one scheduled task behind it, for a connection whose timeouts
/// are re-armed on every request (header, response, idle keep-alive). The task never sleeps
/// longer than `step`, the shortest timeout the connection uses; so arming a deadline (no
/// sooner than `step` ahead) or cancelling one only records it, and the task, when it runs
/// before the deadline, sleeps again. A busy keep-alive connection schedules one task per
/// `step` instead of cancelling and scheduling one two or three times per request.
/// Used on its event loop only.
final class DeadlineTimer {
    private let loop: EventLoop
    private let step: TimeAmount
    private var deadline: NIODeadline?
    private var action: (() -> Void)?
    private var task: Scheduled<Void>?
    private var taskDeadline: NIODeadline?

    init(loop: EventLoop, step: Duration) {
        self.loop = loop
        self.step = TimeAmount(step)
    }

    /// Runs `action` once `after` has passed, unless re-armed or cancelled first.
    func arm(after: Duration, _ action: @escaping () -> Void) {
        let when = NIODeadline.now() + TimeAmount(after)
        deadline = when
        self.action = action
        if let taskDeadline, taskDeadline <= when { return }
        schedule(at: when)
    }

    func cancel() {
        deadline = nil
        action = nil
    }

    /// Cancels the pending task too: for a connection that is gone.
    func stop() {
        cancel()
        task?.cancel()
        task = nil
        taskDeadline = nil
    }

    private func schedule(at deadline: NIODeadline) {
        task?.cancel()
        let when = min(deadline, .now() + step)
        taskDeadline = when
        task = loop.assumeIsolated().scheduleTask(deadline: when) { [weak self] in self?.fired() }
    }

    private func fired() {
        task = nil
        taskDeadline = nil
        guard let deadline else { return }
        if deadline > .now() {
            schedule(at: deadline)
            return
        }
        let action = self.action
        cancel()
        action?()
    }
}
