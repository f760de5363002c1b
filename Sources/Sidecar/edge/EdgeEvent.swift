import Logging
import Protocol

/// Events at the gateway's edge that a peer can repeat at will, so they are logged through
/// `RepeatedEvents` (one record per kind per interval, with the count) instead of one each.
enum EdgeEvent: Hashable, Sendable {
    /// A tunnel handshake answered with this status (or closed unanswered before TLS).
    case tunnelRefused(status: Int)
    case tunnelTLSFailed
    case publicTLSFailed
    /// A connection refused at accept because a limit was reached.
    case limitReached(pool: AdmissionPool, decision: ConnectionAdmission.Decision)
    /// An address reached the failed-authentication limit and is refused for a while.
    case addressBlocked
    /// A tunnel connection from a blocked address, refused at accept.
    case blockedAddressRefused
    /// A public TCP connection closed because the agent did not answer its stream in time.
    case streamOpenTimedOut

    var message: String {
        switch self {
        case .tunnelRefused: return "tunnel connection refused"
        case .tunnelTLSFailed: return "tunnel handshake failed"
        case .publicTLSFailed: return "public TLS handshake failed"
        case .limitReached(let pool, _): return "\(pool.rawValue) connection refused: limit reached"
        case .addressBlocked: return "address blocked after failed tunnel authentications"
        case .blockedAddressRefused: return "tunnel connection from a blocked address refused"
        case .streamOpenTimedOut: return "agent did not answer a public connection's stream in time; connection closed"
        }
    }

    /// Scanners fail TLS all day long: not worth more than info.
    var level: Logger.Level {
        switch self {
        case .tunnelRefused, .limitReached, .addressBlocked: return .notice
        case .streamOpenTimedOut: return .warning
        case .tunnelTLSFailed, .blockedAddressRefused: return .info
        case .publicTLSFailed: return .debug
        }
    }

    var keyEvent: KeyEvent? {
        switch self {
        case .tunnelRefused: return .registrationRejected
        case .limitReached: return .connectionLimitReached
        case .addressBlocked, .blockedAddressRefused: return .authThrottled
        case .tunnelTLSFailed, .publicTLSFailed, .streamOpenTimedOut: return nil
        }
    }
}

/// Which connections a limit counts: the public listeners together, or the tunnel listener.
enum AdmissionPool: String, Hashable, Sendable {
    case `public`, tunnel
}
