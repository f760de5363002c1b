/// The ACME resources fastgw reads (RFC 8555 §7.1), parsed from the server's JSON. Fields a
/// step needs are required; a server that leaves them out gets a clear error, not a crash.
public struct AcmeDirectory: Equatable, Sendable {
    public let newNonce: String
    public let newAccount: String
    public let newOrder: String
    /// ARI (RFC 9773), when the server offers it.
    public let renewalInfo: String?
    public let termsOfService: String?

    public init?(json: JSON) {
        guard let newNonce = json["newNonce"]?.string, let newAccount = json["newAccount"]?.string,
              let newOrder = json["newOrder"]?.string else { return nil }
        self.newNonce = newNonce
        self.newAccount = newAccount
        self.newOrder = newOrder
        renewalInfo = json["renewalInfo"]?.string
        termsOfService = json["meta"]?["termsOfService"]?.string
    }
}

public struct AcmeOrder: Equatable, Sendable {
    /// pending, ready, processing, valid, invalid.
    public let status: String
    public let authorizations: [String]
    public let finalize: String
    public let certificate: String?
    public let error: AcmeProblem?

    public init?(json: JSON) {
        guard let status = json["status"]?.string, let finalize = json["finalize"]?.string,
              let authorizations = json["authorizations"]?.array?.compactMap(\.string) else { return nil }
        self.status = status
        self.authorizations = authorizations
        self.finalize = finalize
        certificate = json["certificate"]?.string
        error = json["error"].flatMap(AcmeProblem.init(json:))
    }
}

public struct AcmeChallenge: Equatable, Sendable {
    public let type: String
    public let url: String
    public let token: String
    public let status: String
    public let error: AcmeProblem?

    public init?(json: JSON) {
        guard let type = json["type"]?.string, let url = json["url"]?.string, let status = json["status"]?.string else { return nil }
        self.type = type
        self.url = url
        self.status = status
        token = json["token"]?.string ?? ""
        error = json["error"].flatMap(AcmeProblem.init(json:))
    }

    /// RFC 8555 §8.1: tokens are base64url, at least 128 bits; anything else could smuggle a
    /// path into the HTTP-01 answer. At most what the http listeners serve
    /// (`AcmeChallengePath.maximumTokenLength`), so an accepted token can be answered.
    public var hasValidToken: Bool {
        token.utf8.count >= 22 && token.utf8.count <= AcmeChallengePath.maximumTokenLength && Base64URL.decode(token) != nil
    }
}

public struct AcmeAuthorization: Equatable, Sendable {
    /// pending, valid, invalid, deactivated, expired, revoked.
    public let status: String
    public let identifier: AcmeIdentifierValue
    public let challenges: [AcmeChallenge]
    public let wildcard: Bool

    public init?(json: JSON) {
        guard let status = json["status"]?.string, let identifierJSON = json["identifier"],
              let identifier = AcmeIdentifierValue(json: identifierJSON) else { return nil }
        self.status = status
        self.identifier = identifier
        challenges = (json["challenges"]?.array ?? []).compactMap(AcmeChallenge.init(json:))
        wildcard = json["wildcard"] == .bool(true)
    }

    /// The first kind in `kinds` (the caller's preference) that the server offers.
    public func challenge(preferring kinds: [AcmeChallengeKind]) -> (AcmeChallengeKind, AcmeChallenge)? {
        for kind in kinds {
            if let c = challenges.first(where: { $0.type == kind.rawValue && $0.hasValidToken }) { return (kind, c) }
        }
        return nil
    }

    /// Why it failed, from the first challenge that carries an error.
    public var failure: AcmeProblem? { challenges.lazy.compactMap(\.error).first }
}

/// How long to wait before asking again about a pending authorization or a processing order:
/// the server's Retry-After when it gives one (within bounds), else 1, 2, 4 ... up to 10 s,
/// never past the deadline.
public enum AcmePolling {
    public static func delay(attempt: Int, retryAfter: Int?, remaining: Int) -> Int? {
        guard remaining > 0 else { return nil }
        let suggested = retryAfter.map { min(max($0, 1), 60) } ?? min(1 << min(attempt, 4), 10)
        return min(suggested, remaining)
    }
}
