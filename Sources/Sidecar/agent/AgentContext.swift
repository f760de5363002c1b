import Logging
import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// What every agent handler needs, shared across event loops. Settings are swapped as a
/// whole by a reload: new dials and new streams see the new ones.
final class AgentContext: Sendable {
    final class Settings: Sendable {
        let config: AgentConfig
        let tls: TLSContext
        let h2Tuning: H2Tuning

        init(config: AgentConfig, tls: TLSContext) {
            self.config = config
            self.tls = tls
            let t = config.tuning
            var tuning = H2Tuning(connectionWindow: t.connectionWindow, streamWindow: t.streamWindow, sendWatermark: t.sendWatermark)
            tuning.trustsPeerResets = true
            self.h2Tuning = tuning
        }
    }

    let logger: Logger
    /// Random id of this agent process, so the gateway can tell restarts apart.
    let instance: String
    let stats = AgentStats()
    let slots = AgentSlots()
    let drain = DrainCoordinator()
    /// Failures the gateway's public clients can cause at any rate, counted in the log.
    let events: RepeatedEvents
    private let current: NIOLockedValueBox<Settings>
    /// Who the dial path speaks for: the agent, or a visitor (`fastgw visitor`), which names
    /// itself with `Fastgw-Visitor`, is the HTTP/2 client and has its own connection delegate.
    let peer: TunnelHandshake.Peer
    let makeDelegate: @Sendable (AgentContext, SlotKey) -> TunnelConnectionDelegate

    init(
        settings: Settings, logger: Logger, peer: TunnelHandshake.Peer = .agent,
        makeDelegate: @escaping @Sendable (AgentContext, SlotKey) -> TunnelConnectionDelegate = { AgentTunnel(agent: $0, slot: $1) }
    ) {
        self.peer = peer
        self.makeDelegate = makeDelegate
        self.logger = logger
        self.events = RepeatedEvents(logger: logger)
        self.instance = (0..<8).map { _ in String(format2: UInt8.random(in: 0...255)) }.joined()
        self.current = NIOLockedValueBox(settings)
    }

    var settings: Settings {
        get { current.withLockedValue { $0 } }
        set { current.withLockedValue { $0 = newValue } }
    }

    var config: AgentConfig { settings.config }
    var isDraining: Bool { drain.isDraining }
}

extension String {
    /// Two lowercase hex digits.
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
