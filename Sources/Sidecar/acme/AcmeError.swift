import Protocol

/// An ACME failure an operator can act on: which URL, and the server's own words (RFC 7807
/// problem document type and detail) when it sent them.
struct AcmeError: Error, Sendable, CustomStringConvertible {
    let message: String
    /// The problem document's `type` (`urn:ietf:params:acme:error:badNonce`, ...), when there was one.
    let problemType: String?

    /// The challenge kind whose validation failed, when that is what failed.
    let challenge: AcmeChallengeKind?

    /// The server's Retry-After (seconds, clamped), when it sent one with the error.
    var retryAfter: Int?

    init(_ message: String, problemType: String? = nil, challenge: AcmeChallengeKind? = nil) {
        self.message = message
        self.problemType = problemType
        self.challenge = challenge
    }

    var description: String { message }

    /// The server answered `url` with an error status and perhaps a problem document.
    static func server(url: String, status: Int, problem: AcmeProblem?, retryAfter: Int? = nil) -> AcmeError {
        var error = problem.map { AcmeError("ACME server answered \(url) with status \(status): \($0)", problemType: $0.type) }
            ?? AcmeError("ACME server answered \(url) with status \(status)")
        error.retryAfter = retryAfter
        return error
    }

    static func openSSL(_ what: String) -> AcmeError {
        AcmeError("\(what): \(TLSError.drainOpenSSLErrors())")
    }
}
