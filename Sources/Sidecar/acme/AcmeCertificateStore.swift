import Logging
import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// The certificates obtained over ACME, by host: what the https listeners' SNI selection
/// consults after the static `[[certificate]]`s. Replacing an entry serves the new certificate
/// to new handshakes at once; a handshake that switched to the old one keeps it alive
/// (`TLSContext.adopt`), so dropping it here is safe at any moment. Lives as
/// long as the gateway, so a reload keeps what was issued.
final class AcmeCertificateStore: Sendable {
    enum Lookup {
        /// Not a host the gateway obtains certificates for.
        case unmanaged
        /// Managed, but no certificate yet (the first order has not succeeded).
        case pending
        case issued(TLSContext)
    }

    private struct Entries {
        var managed: Set<String> = []
        var contexts: [String: TLSContext] = [:]
        /// When each pending host's refusal was last logged (one line a minute per host).
        var refusalLogged: [String: NIODeadline] = [:]
    }

    private let entries = NIOLockedValueBox(Entries())
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func lookup(_ host: String) -> Lookup {
        entries.withLockedValue { e in
            if let c = e.contexts[host] { return .issued(c) }
            return e.managed.contains(host) ? .pending : .unmanaged
        }
    }

    /// The hosts the current plan manages (after start and every reload). Certificates of
    /// hosts no longer managed stop being served.
    func manage(_ hosts: Set<String>) {
        entries.withLockedValue { e in
            e.managed = hosts
            e.contexts = e.contexts.filter { hosts.contains($0.key) }
            e.refusalLogged = e.refusalLogged.filter { hosts.contains($0.key) }
        }
    }

    /// Serves `context` for every one of `hosts` from the next handshake on.
    func install(_ context: TLSContext, hosts: [String]) {
        entries.withLockedValue { e in
            for h in hosts where e.managed.contains(h) {
                e.contexts[h] = context
            }
        }
    }

    /// A handshake for a managed host arrived before its first certificate.
    func refusedBeforeIssue(_ host: String) {
        let now = NIODeadline.now()
        let due = entries.withLockedValue { e in
            if let last = e.refusalLogged[host], now - last < .minutes(1) { return false }
            e.refusalLogged[host] = now
            return true
        }
        if due {
            logger.warning("TLS handshake refused: no ACME certificate yet for this host (its order has not succeeded)", metadata: ["host": "\(host)"])
        }
    }
}
