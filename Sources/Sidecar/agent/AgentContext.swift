import Logging
import NIOCore
import Protocol

/// What every agent handler needs, shared across event loops.
final class AgentContext: Sendable {
    let config: AgentConfig
    let logger: Logger
    /// Random id of this agent process, so the gateway can tell restarts apart.
    let instance: String
    let h2Tuning: H2Tuning

    init(config: AgentConfig, logger: Logger) {
        self.config = config
        self.logger = logger
        self.instance = (0..<8).map { _ in String(format2: UInt8.random(in: 0...255)) }.joined()
        let t = config.tuning
        self.h2Tuning = H2Tuning(connectionWindow: t.connectionWindow, streamWindow: t.streamWindow, sendWatermark: t.sendWatermark)
    }
}

extension String {
    /// Two lowercase hex digits.
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
