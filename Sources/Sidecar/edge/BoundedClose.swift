import NIOCore

/// "Write then close" that cannot hang: the channel closes when the write completes or
/// after `grace`, whichever comes first. A peer that stops reading (a full receive window)
/// would otherwise keep the connection, and its descriptor, for ever.
enum BoundedClose {
    static let grace: TimeAmount = .seconds(2)

    static func close(_ channel: Channel, after write: EventLoopFuture<Void>, grace: TimeAmount = BoundedClose.grace) {
        let fallback = channel.eventLoop.scheduleTask(in: grace) { channel.close(promise: nil) }
        write.whenComplete { _ in
            fallback.cancel()
            channel.close(promise: nil)
        }
    }
}
