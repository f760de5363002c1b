/// The challenge types fastgw can answer itself (RFC 8555 §8.3, RFC 8737). DNS-01 is not
/// here: it needs a DNS provider, which fastgw does not drive.
public enum AcmeChallengeKind: String, Sendable, CaseIterable {
    case http01 = "http-01"
    case tlsALPN01 = "tls-alpn-01"
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
