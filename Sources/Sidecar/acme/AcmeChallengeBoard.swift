import Logging
import NIOConcurrencyHelpers
import Protocol

/// The challenge answers of the order in progress, read by the http listeners (HTTP-01) and
/// by the https listeners' handshakes (TLS-ALPN-01). Outlives reloads; holds only what the
/// ACME client published and has not withdrawn (one order at a time: a few entries).
final class AcmeChallengeBoard: Sendable {
    private struct Answers {
        var http01: [String: String] = [:]
        var tlsALPN01: [String: TLSContext] = [:]
    }

    private let answers = NIOLockedValueBox(Answers())
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// The key authorization for an HTTP-01 token, if an order waits for it.
    func http01(token: String) -> String? {
        answers.withLockedValue { $0.http01[token] }
    }

    /// The validation certificate for `host` while its TLS-ALPN-01 challenge is pending.
    func tlsALPN01(host: String) -> TLSContext? {
        answers.withLockedValue { $0.tlsALPN01[host] }
    }

    func setHTTP01(token: String, keyAuthorization: String?) {
        answers.withLockedValue { $0.http01[token] = keyAuthorization }
    }

    func setTLSALPN01(host: String, context: TLSContext?) {
        answers.withLockedValue { $0.tlsALPN01[host] = context }
    }
}
