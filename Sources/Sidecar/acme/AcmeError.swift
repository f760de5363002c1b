import Protocol

/// An ACME failure an operator can act on: which URL, and the server's own words (RFC 7807
/// problem document type and detail) when it sent them.
struct AcmeError: Error, Sendable, CustomStringConvertible {
    let message: String
    /// The problem document's `type` (`urn:ietf:params:acme:error:badNonce`, ...), when there was one.
    let problemType: String?

    /// The challenge kind whose validation failed, when that is what failed.
    let challenge: AcmeChallengeKind?

    init(_ message: String, problemType: String? = nil, challenge: AcmeChallengeKind? = nil) {
        self.message = message
        self.problemType = problemType
        self.challenge = challenge
    }

    var description: String { message }

    /// The server answered `url` with an error status and perhaps a problem document.
    static func server(url: String, status: Int, problem: AcmeProblem?) -> AcmeError {
        guard let problem else { return AcmeError("ACME server answered \(url) with status \(status)") }
        return AcmeError("ACME server answered \(url) with status \(status): \(problem)", problemType: problem.type)
    }

    static func openSSL(_ what: String) -> AcmeError {
        AcmeError("\(what): \(TLSError.drainOpenSSLErrors())")
    }
}
