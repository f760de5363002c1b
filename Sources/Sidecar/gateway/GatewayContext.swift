import Logging
import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// What every gateway handler needs, shared across event loops. The settings are swapped
/// as a whole by a reload; handlers read them when a connection starts, so connections
/// already running keep what they started with.
final class GatewayContext: Sendable {
    final class Settings: Sendable {
        let config: GatewayConfig
        /// The dedicated tunnel listener's TLS; nil without one.
        let tls: TLSContext?
        /// The HTTPS listeners' certificates.
        let publicTLS: PublicCertificates
        let h2Tuning: H2Tuning
        let keepaliveInterval: TimeAmount
        let keepaliveTimeout: TimeAmount
        let handshakeTimeout: TimeAmount
        /// `[limits]` with its defaults derived from the descriptor limit in force.
        let limits: ConnectionLimits
        /// The access policies and where they apply; `previous` lends unchanged policies'
        /// per-client state to a reload.
        let policies: PolicySet

        /// `counters`: the gateway's `stats.policies`, which outlive every configuration.
        init(
            config: GatewayConfig, tls: TLSContext?, publicTLS: PublicCertificates, counters: PolicyCounters,
            previous: PolicySet? = nil
        ) {
            self.config = config
            self.policies = PolicySet(config: config, previous: previous, counters: counters)
            self.tls = tls
            self.publicTLS = publicTLS
            let t = config.tunnel.tuning
            self.h2Tuning = H2Tuning(connectionWindow: t.connectionWindow, streamWindow: t.streamWindow, sendWatermark: t.sendWatermark)
            self.keepaliveInterval = TimeAmount(t.keepaliveInterval)
            self.keepaliveTimeout = TimeAmount(t.keepaliveTimeout)
            self.handshakeTimeout = TimeAmount(config.tunnel.handshakeTimeout)
            self.limits = ConnectionLimits.resolve(config.limits, openFiles: ResourceLimits.openFiles)
        }
    }

    let registry: GatewayRegistry
    /// Live visitor connections (`[[visitor]]`), checked again at reload.
    let visitors = VisitorConnections()
    let stats: GatewayStats
    let drain = DrainCoordinator()
    let logger: Logger
    /// Repeated edge events, counted and logged once per interval.
    let events: RepeatedEvents
    /// Limits and throttling at accept.
    let admission: EdgeAdmission
    /// Checks `basic_auth` passwords off the event loops.
    let passwords = SharedPasswordVerifier()
    /// ACME challenge answers and obtained certificates; outlive reloads.
    let acme: AcmeTLSSelection
    private let current: NIOLockedValueBox<Settings>

    /// `stats`: the ones `settings` counted its policies in; `acme`: the one `settings`'
    /// certificates were built with.
    init(settings: Settings, stats: GatewayStats, logger: Logger, acme: AcmeTLSSelection? = nil) {
        self.acme = acme ?? AcmeTLSSelection(board: AcmeChallengeBoard(logger: logger), store: AcmeCertificateStore(logger: logger))
        self.stats = stats
        self.registry = GatewayRegistry(grants: settings.config.agents)
        self.logger = logger
        self.current = NIOLockedValueBox(settings)
        self.events = RepeatedEvents(logger: logger)
        self.admission = EdgeAdmission(limits: settings.limits, events: events, stats: stats)
        admission.trustedProxies = settings.config.trustedProxies
    }

    var settings: Settings {
        get { current.withLockedValue { $0 } }
        set {
            current.withLockedValue { $0 = newValue }
            admission.limits = newValue.limits
            admission.trustedProxies = newValue.config.trustedProxies
        }
    }

    var isDraining: Bool { drain.isDraining }
}

extension TimeAmount {
    init(_ d: Duration) {
        let c = d.components
        self = .nanoseconds(c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000)
    }
}

extension GatewayContext {
    /// The logger of one arriving tunnel peer: `role` ("agent" or "visitor") names it, with
    /// the address it came from.
    func peerLogger(role: String, _ accepted: TunnelHandshake.Accepted, remote: String) -> Logger {
        var logger = self.logger
        logger[metadataKey: role] = "\(accepted.agent)"
        logger[metadataKey: "remote"] = "\(remote)"
        return logger
    }
}
