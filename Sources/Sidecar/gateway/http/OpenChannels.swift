import NIOConcurrencyHelpers
import NIOCore

/// A set of open channels that can all be sent an event, e.g. the gateway's drain notice to
/// every public HTTP connection. Channels leave the set when they close.
final class OpenChannels: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    func add(_ channel: Channel) {
        let key = ObjectIdentifier(channel)
        channels.withLockedValue { $0[key] = channel }
        channel.closeFuture.whenComplete { [channels] _ in
            channels.withLockedValue { $0[key] = nil }
        }
    }

    func broadcast(_ event: some Sendable) {
        for channel in channels.withLockedValue({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(event)
        }
    }
}
