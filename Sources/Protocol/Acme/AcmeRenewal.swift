/// When a certificate obtained over ACME is renewed, and when a failed attempt is retried.
/// Times are seconds since the epoch; `random` values in 0..<1 come from the caller so tests
/// can pin them.
public struct AcmeRenewal: Equatable, Sendable {
    /// `[acme] renew_before`; nil: at two thirds of the lifetime.
    public var renewBefore: Int?
    /// The first retry after a failure, doubling per failure up to `maximumRetry`.
    public var firstRetry = 60
    public var maximumRetry = 6 * 3600

    public init(renewBefore: Int? = nil) {
        self.renewBefore = renewBefore
    }

    /// The moment to renew a certificate valid from `notBefore` to `notAfter`. An ARI window
    /// (RFC 9773) wins: a random moment inside it, as the CA asks. Otherwise `renew_before`
    /// ahead of expiry, exactly as the operator set it (unless it is the whole lifetime or more,
    /// see `ignoresRenewBefore`); by default two thirds of the lifetime,
    /// moved earlier by up to a fiftieth of the lifetime so that certificates issued together
    /// do not all renew in the same second.
    public func renewAt(notBefore: Int, notAfter: Int, window: (start: Int, end: Int)? = nil, random: Double) -> Int {
        if let w = window, w.end >= w.start {
            return w.start + Int(Double(w.end - w.start) * random)
        }
        let lifetime = max(notAfter - notBefore, 0)
        if let renewBefore, renewBefore < lifetime { return max(notBefore, notAfter - renewBefore) }
        let jitter = Int(Double(lifetime / 50) * random)
        return notBefore + lifetime * 2 / 3 - jitter
    }

    /// A `renew_before` of the whole lifetime or more would make every certificate due the
    /// moment it is issued; two thirds of the lifetime apply instead (the caller warns).
    public func ignoresRenewBefore(notBefore: Int, notAfter: Int) -> Bool {
        guard let renewBefore else { return false }
        return renewBefore >= max(notAfter - notBefore, 0)
    }

    /// The next renewal after an issuance at `now`: `renewAt`, but never sooner than
    /// max(1 h, a tenth of the lifetime) later, so a certificate that looks due at once (an
    /// ARI window in the past, notAfter ≤ notBefore, a tiny lifetime) cannot loop orders.
    public func afterIssuance(now: Int, notBefore: Int, notAfter: Int, window: (start: Int, end: Int)? = nil, random: Double) -> Int {
        let floor = max(3600, max(notAfter - notBefore, 0) / 10)
        return max(renewAt(notBefore: notBefore, notAfter: notAfter, window: window, random: random), now + floor)
    }

    /// How often a certificate's ARI window is asked for again (RFC 9773 §4.3 suggests
    /// checking at least twice a day; the CA may move the window, e.g. before a revocation).
    public static let ariPollInterval = 6 * 3600

    /// The next renewal after an ARI poll: a moment inside the window (now, when the window
    /// has begun or passed, as RFC 9773 §4.2 asks), or `current` when there is no window.
    public func afterARIPoll(current: Int, now: Int, window: (start: Int, end: Int)?, random: Double) -> Int {
        guard let w = window, w.end >= w.start else { return current }
        return max(now, w.start + Int(Double(w.end - w.start) * random))
    }

    /// The wait after a failure: the backoff, but at least what the CA asked (Retry-After), and
    /// at least an hour when it said rateLimited (RFC 8555 §6.6), whose limits run for hours.
    public func retryDelay(failures: Int, random: Double, retryAfter: Int?, problemType: String?) -> Int {
        var delay = retryDelay(failures: failures, random: random)
        if let retryAfter { delay = max(delay, retryAfter) }
        if problemType == "urn:ietf:params:acme:error:rateLimited" { delay = max(delay, 3600) }
        return delay
    }

    /// How long to wait after the `failures`-th failure in a row (1 for the first): doubling
    /// from `firstRetry`, capped, and spread over the upper half so retries of many
    /// certificates (or gateways) do not line up.
    public func retryDelay(failures: Int, random: Double) -> Int {
        let exponent = min(max(failures - 1, 0), 30)
        let full = min(firstRetry << exponent, maximumRetry)
        return full / 2 + Int(Double(full - full / 2) * random)
    }
}
