/// The challenge types fastgw can answer itself (RFC 8555 §8.3, RFC 8737). DNS-01 is not
/// here: it needs a DNS provider, which fastgw does not drive.
public enum AcmeChallengeKind: String, Sendable, CaseIterable {
    case http01 = "http-01"
    case tlsALPN01 = "tls-alpn-01"

    /// HTTP-01 is answered by the http listeners, TLS-ALPN-01 by the https ones.
    public func answerable(httpListener: Bool, httpsListener: Bool) -> Bool {
        self == .http01 ? httpListener : httpsListener
    }

    /// The kinds an order offers, in preference order: the configured ones the listeners can
    /// answer; the kind whose validation failed last goes last, so the next attempt tries
    /// the other one first (a CA that cannot reach port 80 may reach 443).
    public static func forOrder(
        configured: [AcmeChallengeKind], httpListener: Bool, httpsListener: Bool, lastFailed: AcmeChallengeKind?
    ) -> [AcmeChallengeKind] {
        let usable = configured.filter { $0.answerable(httpListener: httpListener, httpsListener: httpsListener) }
        guard let lastFailed else { return usable }
        return usable.filter { $0 != lastFailed } + usable.filter { $0 == lastFailed }
    }

    /// Problem types that say the CA could not validate this way (RFC 8555 §6.7), as opposed
    /// to the account, the order or the server failing.
    public static func isValidationFailure(problemType: String?) -> Bool {
        guard let problemType else { return false }
        let prefix = "urn:ietf:params:acme:error:"
        return ["connection", "incorrectResponse", "unauthorized", "tls", "dns"].contains { problemType == prefix + $0 }
    }
}

/// An order's identifier (RFC 8555 §9.7.7): fastgw only orders DNS names.
public struct AcmeIdentifierValue: Equatable, Hashable, Sendable {
    public let type: String
    public let value: String

    public init(type: String = "dns", value: String) {
        self.type = type
        self.value = value
    }

    public var json: JSON { .object(["type": .string(type), "value": .string(value)]) }

    public init?(json: JSON) {
        guard let type = json["type"]?.string, let value = json["value"]?.string else { return nil }
        self.init(type: type, value: value)
    }
}
