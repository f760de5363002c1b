import Logging
import Protocol

/// Events that a peer can repeat at will — at the gateway's edge, or on the agent when the
/// gateway passes on what public clients do — so they are logged through `RepeatedEvents`
/// (one record per kind per interval, with the count) instead of one each.
enum EdgeEvent: Hashable, Sendable {
    /// A tunnel handshake answered with this status (or closed unanswered before TLS).
    case tunnelRefused(status: Int)
    /// A tunnel handshake refused for its client certificate, by reason (each reason is
    /// logged on its own, so one kind of failure does not hide another).
    case tunnelCertificateRefused(CertificateRefusal.Code)
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
    /// A public TCP connection closed because no live agent serves its port.
    case noLiveAgent
    /// The agent answered a TCP stream with this status instead of connecting the service.
    case agentConnectFailed(status: String)
    /// A tunnel stream could not be opened for a public connection or request.
    case streamOpenFailed
    /// An HTTP request that ended without a relayed response, or with a 5xx (status 0: the
    /// client or the stream went away first); on the agent, one whose upstream exchange failed.
    case requestFailed(status: Int)
    /// A request refused before it was understood (malformed, over a limit).
    case requestRefused(status: Int)
    /// Agent: an upstream that could not be connected for a stream.
    case upstreamConnectFailed(status: Int)
    /// A connection on a `proxy_protocol` listener refused: `untrusted` peer, `malformed`
    /// header, none within the `timeout`, or the named client over its `client_limit`.
    case proxyHeaderRefused(reason: String)
    /// A request or connection an access policy refused (`deny` or `limit`); one kind per
    /// policy and answer (bounded by the configuration).
    case policyRefused(policy: String, decision: String)
    /// A visitor's stream refused by the gateway or the agent (`reason` as counted in stats).
    case visitorStreamRefused(reason: String)
    /// A UDP socket reported an error (an ICMP answer to an earlier datagram).
    case udpSocketError
    /// Visitor: a SOCKS5 client's RFC 1929 user/password refused (`blocked`: its address had
    /// failed too often and was refused without a check).
    case socksAuthRefused(blocked: Bool)

    var message: String {
        switch self {
        case .tunnelRefused: return "tunnel connection refused"
        case .tunnelCertificateRefused: return "tunnel connection refused: client certificate"
        case .tunnelTLSFailed: return "tunnel handshake failed"
        case .publicTLSFailed: return "public TLS handshake failed"
        case .limitReached(let pool, _): return "\(pool.rawValue) connection refused: limit reached"
        case .addressBlocked: return "address blocked after failed tunnel authentications"
        case .blockedAddressRefused: return "tunnel connection from a blocked address refused"
        case .streamOpenTimedOut: return "agent did not answer a public connection's stream in time; connection closed"
        case .noLiveAgent: return "no live agent serves this port; connection closed"
        case .agentConnectFailed: return "agent could not connect the service"
        case .streamOpenFailed: return "cannot open tunnel stream"
        case .requestFailed: return "http request failed"
        case .requestRefused: return "http request refused"
        case .upstreamConnectFailed: return "upstream connect failed"
        case .visitorStreamRefused: return "visitor stream refused"
        case .udpSocketError: return "UDP socket error"
        case .socksAuthRefused(let blocked):
            return blocked ? "SOCKS5 login from a throttled address refused" : "SOCKS5 user or password wrong"
        case .policyRefused(let policy, let decision):
            return decision == "deny" ? "access denied by policy \(policy)" : "rate or connection limit of policy \(policy) reached"
        case .proxyHeaderRefused(let reason):
            switch reason {
            case "untrusted": return "PROXY protocol connection from an untrusted peer refused"
            case "client_limit": return "public connection refused: limit per client behind a load balancer reached"
            default: return "PROXY header refused"
            }
        }
    }

    /// Scanners fail TLS all day long: not worth more than info.
    var level: Logger.Level {
        switch self {
        case .tunnelRefused, .tunnelCertificateRefused, .limitReached, .addressBlocked: return .notice
        // A balancer that is not trusted is a configuration mistake worth seeing.
        case .proxyHeaderRefused(let reason): return reason == "untrusted" || reason == "client_limit" ? .notice : .info
        case .streamOpenTimedOut, .noLiveAgent, .agentConnectFailed, .streamOpenFailed, .requestFailed,
             .upstreamConnectFailed:
            return .warning
        case .requestRefused, .policyRefused: return .info
        case .visitorStreamRefused, .socksAuthRefused: return .notice
        case .tunnelTLSFailed, .blockedAddressRefused, .udpSocketError: return .info
        case .publicTLSFailed: return .debug
        }
    }

    var keyEvent: KeyEvent? {
        switch self {
        case .tunnelRefused, .tunnelCertificateRefused: return .registrationRejected
        case .limitReached: return .connectionLimitReached
        case .addressBlocked, .blockedAddressRefused: return .authThrottled
        case .tunnelTLSFailed, .publicTLSFailed, .streamOpenTimedOut, .noLiveAgent, .agentConnectFailed,
             .streamOpenFailed, .requestFailed, .requestRefused, .upstreamConnectFailed, .proxyHeaderRefused, .policyRefused,
             .visitorStreamRefused, .socksAuthRefused,
             .udpSocketError:
            return nil
        }
    }
}

/// Which connections a limit counts: the public listeners together, or the tunnel listener.
enum AdmissionPool: String, Hashable, Sendable {
    case `public`, tunnel
}
