/// How much registration work one agent connection may ask of the gateway. A register
/// message is checked under the registry's lock and answered in full, so an agent that sends
/// them in a loop, or declares thousands of services, would stall every other agent's
/// registrations and fill the log (DESIGN §9: agents are only half trusted).
public struct RegistrationPacing: Sendable {
    /// Services one register message may declare; a larger message is refused whole.
    public static let maxServices = 1024
    /// Register messages per window; the agent sends one per connection and per reload.
    public static let maxPerWindow = 20
    public static let window: Duration = .seconds(10)

    private var windowStart: Duration?
    private var count = 0

    public init() {}

    public enum Verdict: Equatable, Sendable {
        case accept
        /// The message declares more services than `maxServices`.
        case tooManyServices(Int)
        /// Registrations come faster than `maxPerWindow` per `window`: the connection is closed.
        case flood
    }

    /// Judges one register message arriving at `now` (any monotonic clock).
    public mutating func judge(services: Int, at now: Duration) -> Verdict {
        if let start = windowStart, now - start < Self.window {
            count += 1
        } else {
            windowStart = now
            count = 1
        }
        if count > Self.maxPerWindow { return .flood }
        if services > Self.maxServices { return .tooManyServices(services) }
        return .accept
    }
}
