import NIOCore

/// A handle to an object confined to one event loop, usable from any loop. Calls made on
/// the owning loop run inline; calls from elsewhere hop with `execute`. This is how a public
/// connection and the tunnel connection carrying it talk when they live on different loops.
struct LoopBoundRef<Object: AnyObject>: Sendable {
    let eventLoop: EventLoop
    private let bound: NIOLoopBound<Object>

    init(_ object: Object, eventLoop: EventLoop) {
        self.eventLoop = eventLoop
        self.bound = NIOLoopBound(object, eventLoop: eventLoop)
    }

    func run(_ body: @escaping @Sendable (Object) -> Void) {
        if eventLoop.inEventLoop {
            body(bound.value)
        } else {
            let bound = self.bound
            eventLoop.execute { body(bound.value) }
        }
    }
}
