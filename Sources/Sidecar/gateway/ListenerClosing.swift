import NIOCore
import NIOPosix

/// Closes server channels without losing a connection. NIO hands an accepted socket to its
/// child event loop for set-up and, if the listener has closed by the time that returns,
/// closes the new connection (the client sees a reset). So accepting is paused first, every
/// loop is given time to finish the set-ups already under way, and only then do the listeners
/// close. Connections still in the kernel's queue stay there when systemd holds the socket.
enum ListenerClosing {
    static func close(_ channels: [Channel], group: MultiThreadedEventLoopGroup) -> EventLoopFuture<Void> {
        let loop = group.next()
        guard !channels.isEmpty else { return loop.makeSucceededVoidFuture() }
        let paused = channels.map { $0.setOption(.autoRead, value: false).recover { _ in } }
        return EventLoopFuture.andAllComplete(paused, on: loop)
            // Set-ups queued on child loops run, then their hop back to the listener's loop.
            .flatMap { everyLoopTurns(group, on: loop) }
            .flatMap { everyLoopTurns(group, on: loop) }
            .flatMap { EventLoopFuture.andAllComplete(channels.map { $0.close().recover { _ in } }, on: loop) }
            // The connections handed over are registered and counted by now.
            .flatMap { everyLoopTurns(group, on: loop) }
    }

    /// Completes once every loop has run a task queued now.
    private static func everyLoopTurns(_ group: MultiThreadedEventLoopGroup, on loop: EventLoop) -> EventLoopFuture<Void> {
        EventLoopFuture.andAllComplete(group.makeIterator().map { $0.submit {} }, on: loop)
    }
}
