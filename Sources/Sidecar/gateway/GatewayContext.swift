import Logging
import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// What every gateway handler needs, shared across event loops.
final class GatewayContext: Sendable {
    let registry: GatewayRegistry
    let logger: Logger
    let h2Tuning: H2Tuning
    let keepaliveInterval: TimeAmount
    let keepaliveTimeout: TimeAmount
    let handshakeTimeout: TimeAmount
    private let draining = NIOLockedValueBox(false)

    init(config: GatewayConfig, logger: Logger) {
        self.registry = GatewayRegistry(grants: config.agents)
        self.logger = logger
        let t = config.tunnel.tuning
        self.h2Tuning = H2Tuning(connectionWindow: t.connectionWindow, streamWindow: t.streamWindow, sendWatermark: t.sendWatermark)
        self.keepaliveInterval = TimeAmount(t.keepaliveInterval)
        self.keepaliveTimeout = TimeAmount(t.keepaliveTimeout)
        self.handshakeTimeout = TimeAmount(config.tunnel.handshakeTimeout)
    }

    var isDraining: Bool {
        get { draining.withLockedValue { $0 } }
        set { draining.withLockedValue { $0 = newValue } }
    }
}

extension TimeAmount {
    init(_ d: Duration) {
        let c = d.components
        self = .nanoseconds(c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000)
    }
}
