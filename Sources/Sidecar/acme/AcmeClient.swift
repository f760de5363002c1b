import Glibc
import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// RFC 8555 client for one directory and one account. The JOSE and resource parsing is in
/// Protocol/Acme; this does the requests in order, with the nonce and account bookkeeping.
final class AcmeClient: Sendable {
    let directoryURL: String
    let trustCAFile: String?
    let accountKey: AcmeKey
    let email: String?
    let group: EventLoopGroup
    let timeout: TimeAmount
    /// Bound on polling one order (authorizations, then processing).
    let orderDeadline: TimeAmount
    let http: AcmeHTTPClient
    let jwk: AcmeJWK

    private struct Session: Sendable {
        var directory: AcmeDirectory?
        var nonce: String?
        var accountURL: String?
    }

    private let session = NIOLockedValueBox(Session())

    init(
        directoryURL: String, trustCAFile: String?, accountKey: AcmeKey, email: String?,
        group: EventLoopGroup, timeout: TimeAmount = .seconds(30), orderDeadline: TimeAmount = .seconds(300)
    ) {
        self.directoryURL = directoryURL
        self.trustCAFile = trustCAFile
        self.accountKey = accountKey
        self.email = email
        self.group = group
        self.timeout = timeout
        self.orderDeadline = orderDeadline
        http = AcmeHTTPClient(trustCAFile: trustCAFile, group: group, timeout: timeout)
        let point = accountKey.publicCoordinates
        jwk = AcmeJWK(x: point.x, y: point.y)
    }

    /// Creates or finds the account (same key, same account), places an order for `hosts`,
    /// answers one challenge per authorization with the first kind in `kinds` the server
    /// offers, polls (bounded, Retry-After honoured), finalizes with a CSR for
    /// `certificateKey`, downloads the chain. Every challenge answer published is withdrawn
    /// before this returns or throws. `replacing`: the chain this order renews; with a
    /// directory that offers ARI the order names it (`replaces`, RFC 9773 §5).
    func obtain(
        hosts: [String], certificateKey: AcmeKey, kinds: [AcmeChallengeKind], sink: AcmeChallengeSink,
        replacing: String? = nil
    ) async throws(AcmeError) -> AcmeIssued {
        guard !hosts.isEmpty else { throw AcmeError("an ACME order needs at least one host") }
        if let bad = hosts.first(where: { !AcmeHostName.isValid($0) }) {
            throw AcmeError("cannot order a certificate for \(bad.debugDescription): only exact DNS names (wildcards need DNS-01)")
        }
        guard !kinds.isEmpty else { throw AcmeError("no challenge kind to answer with") }
        let deadline = NIODeadline.now() + orderDeadline
        let published = PublishedAnswers(sink)
        defer { published.withdrawAll() }

        let account = try await accountURL()
        let directory = try await self.directory()
        let identifiers = JSON.array(hosts.map { AcmeIdentifierValue(value: $0).json })
        var payload: [String: JSON] = ["identifiers": identifiers]
        if directory.renewalInfo != nil, let replacing, let certID = AcmeCertificateInfo.ariCertID(chainPEM: replacing) {
            payload["replaces"] = .string(certID)
        }
        let placed = try await post(directory.newOrder, payload: .object(payload), kid: account)
        guard let orderURL = placed.location else { throw AcmeError("\(directory.newOrder): the new order has no Location") }
        var order = try Self.parse(placed, at: orderURL, as: AcmeOrder.init(json:))

        // The CA is trusted only with what was asked: one authorization per requested host.
        var authorized = Set<String>()
        let requested = Set(hosts.map { $0.lowercased() })
        for authorizationURL in order.authorizations {
            let host = try await authorize(
                authorizationURL, kinds: kinds, account: account, published: published, deadline: deadline, requested: requested)
            guard authorized.insert(host).inserted else { throw AcmeError("\(orderURL): two authorizations for \(host)") }
        }
        guard authorized == requested else {
            throw AcmeError("\(orderURL): the authorizations cover \(authorized.sorted()), not the requested \(requested.sorted())")
        }
        order = try await poll(orderURL, account: account, deadline: deadline, as: AcmeOrder.init(json:)) { $0.status != "pending" }
        guard order.status == "ready" || order.status == "valid" else { throw Self.orderFailure(order, orderURL) }
        if order.status == "ready" {
            let csr = try AcmeCSR.der(hosts: hosts, key: certificateKey)
            let finalized = try await post(order.finalize, payload: .object(["csr": .string(Base64URL.encode(csr))]), kid: account)
            order = try Self.parse(finalized, at: order.finalize, as: AcmeOrder.init(json:))
            if order.status != "valid" {
                order = try await poll(orderURL, account: account, deadline: deadline, as: AcmeOrder.init(json:)) {
                    $0.status != "processing" && $0.status != "ready"
                }
            }
        }
        guard order.status == "valid", let certificateURL = order.certificate else { throw Self.orderFailure(order, orderURL) }
        let download = try await post(certificateURL, payload: nil, kid: account, accept: "application/pem-certificate-chain")
        let chain = String(decoding: download.body, as: UTF8.self)
        guard let info = AcmeCertificateInfo.read(chainPEM: chain) else {
            throw AcmeError("\(certificateURL): the answer is not a PEM certificate chain")
        }
        // Installed only if it names exactly the hosts ordered (no more, no fewer).
        guard Set(info.dnsNames.map { $0.lowercased() }) == requested else {
            throw AcmeError("\(certificateURL): the certificate names \(info.dnsNames.sorted()), not the requested \(requested.sorted())")
        }
        return AcmeIssued(chainPEM: chain, notBefore: info.notBefore, notAfter: info.notAfter, issuer: info.issuer)
    }

    /// Answers one authorization (unless it is already valid) and waits for its outcome;
    /// returns its host (lowercased), which must be one of `requested`: nothing is published
    /// for a name the gateway did not ask for.
    private func authorize(
        _ url: String, kinds: [AcmeChallengeKind], account: String, published: PublishedAnswers, deadline: NIODeadline,
        requested: Set<String>
    ) async throws(AcmeError) -> String {
        let authorization = try Self.parse(try await post(url, payload: nil, kid: account), at: url, as: AcmeAuthorization.init(json:))
        let identified = authorization.identifier.value.lowercased()
        guard requested.contains(identified) else {
            throw AcmeError("\(url): authorization for \(authorization.identifier.value.debugDescription), which was not requested")
        }
        if authorization.status == "valid" { return identified }
        guard authorization.status == "pending" else {
            throw AcmeError("\(url): authorization for \(authorization.identifier.value) is \(authorization.status)")
        }
        guard let (kind, challenge) = authorization.challenge(preferring: kinds) else {
            let offered = authorization.challenges.map(\.type).joined(separator: ", ")
            throw AcmeError("\(url): the server offers no usable challenge for \(authorization.identifier.value) (offered: \(offered))")
        }
        let keyAuthorization = jwk.keyAuthorization(token: challenge.token)
        let host = authorization.identifier.value
        switch kind {
        case .http01:
            published.http01(token: challenge.token, keyAuthorization: keyAuthorization)
        case .tlsALPN01:
            let made = try TLSALPNChallengeCertificate.make(host: host, keyAuthorization: keyAuthorization)
            published.tlsALPN01(host: host, certificatePEM: made.certificatePEM, privateKeyPEM: made.privateKeyPEM)
        }
        if challenge.status == "pending" { _ = try await post(challenge.url, payload: .object([:]), kid: account) }
        let outcome = try await poll(url, account: account, deadline: deadline, as: AcmeAuthorization.init(json:)) {
            $0.status != "pending"
        }
        guard outcome.status == "valid" else {
            let why = outcome.failure.map { ": \($0)" } ?? ""
            throw AcmeError("\(url): \(kind.rawValue) validation of \(host) failed (\(outcome.status))\(why)",
                            problemType: outcome.failure?.type, challenge: kind)
        }
        return identified
    }

    private static func orderFailure(_ order: AcmeOrder, _ url: String) -> AcmeError {
        AcmeError("\(url): order is \(order.status)\(order.error.map { ": \($0)" } ?? "")", problemType: order.error?.type)
    }

    /// POST-as-GET `url` until `done` holds for what it answers or the deadline passes.
    private func poll<Resource>(
        _ url: String, account: String, deadline: NIODeadline, as parse: (JSON) -> Resource?, until done: (Resource) -> Bool
    ) async throws(AcmeError) -> Resource {
        var attempt = 0
        while true {
            let response = try await post(url, payload: nil, kid: account)
            let resource = try Self.parse(response, at: url, as: parse)
            if done(resource) { return resource }
            let remaining = Int((deadline - .now()).nanoseconds / 1_000_000_000)
            let retryAfter = response.retryAfter(now: Self.epochNow())
            guard let wait = AcmePolling.delay(attempt: attempt, retryAfter: retryAfter, remaining: remaining) else {
                throw AcmeError("\(url): still not done after \(orderDeadline.nanoseconds / 1_000_000_000) s")
            }
            attempt += 1
            do { try await Task.sleep(nanoseconds: UInt64(wait) * 1_000_000_000) } catch { throw AcmeError("ACME order cancelled") }
        }
    }

    static func parse<Resource>(_ response: AcmeHTTPResponse, at url: String, as parse: (JSON) -> Resource?) throws(AcmeError) -> Resource {
        guard let json = response.json, let resource = parse(json) else {
            throw AcmeError("\(url): the answer is not the expected ACME resource")
        }
        return resource
    }

    static func epochNow() -> Int { Int(time(nil)) }

    // MARK: session bookkeeping (directory, the one nonce kept, the account URL)

    var sessionDirectory: AcmeDirectory? { session.withLockedValue { $0.directory } }
    var sessionAccountURL: String? { session.withLockedValue { $0.accountURL } }
    func remember(directory: AcmeDirectory) { session.withLockedValue { $0.directory = directory } }
    func remember(accountURL: String) { session.withLockedValue { $0.accountURL = accountURL } }
    func store(nonce: String) { session.withLockedValue { $0.nonce = nonce } }

    func popNonce() -> String? {
        session.withLockedValue { s in
            defer { s.nonce = nil }
            return s.nonce
        }
    }
}

/// The challenge answers an order published, so that every one is withdrawn whatever happens.
private final class PublishedAnswers: @unchecked Sendable {
    // Used by one order's task only, sequentially.
    private let sink: AcmeChallengeSink
    private var tokens: [String] = []
    private var hosts: [String] = []

    init(_ sink: AcmeChallengeSink) {
        self.sink = sink
    }

    func http01(token: String, keyAuthorization: String) {
        tokens.append(token)
        sink.publishHTTP01(token: token, keyAuthorization: keyAuthorization)
    }

    func tlsALPN01(host: String, certificatePEM: String, privateKeyPEM: String) {
        hosts.append(host)
        sink.publishTLSALPN01(host: host, certificatePEM: certificatePEM, privateKeyPEM: privateKeyPEM)
    }

    func withdrawAll() {
        for token in tokens { sink.withdrawHTTP01(token: token) }
        for host in hosts { sink.withdrawTLSALPN01(host: host) }
        tokens = []
        hosts = []
    }
}
