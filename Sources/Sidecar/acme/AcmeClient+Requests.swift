import Glibc
import NIOCore
import Protocol

/// The signed-request layer: directory, nonces, the account, JWS POSTs with one badNonce retry.
extension AcmeClient {
    func directory() async throws(AcmeError) -> AcmeDirectory {
        if let known = sessionDirectory { return known }
        let response = try await http.request("GET", directoryURL)
        guard response.status == 200 else { throw .server(url: directoryURL, status: response.status, problem: response.problem, retryAfter: response.retryAfter(now: Self.epochNow())) }
        let directory = try Self.parse(response, at: directoryURL, as: AcmeDirectory.init(json:))
        remember(directory: directory)
        return directory
    }

    /// The account's URL (the JWS `kid`): newAccount with the key returns the existing account
    /// when there is one (200) or makes it (201).
    func accountURL() async throws(AcmeError) -> String {
        if let known = sessionAccountURL { return known }
        let directory = try await self.directory()
        var payload: [String: JSON] = ["termsOfServiceAgreed": .bool(true)]
        if let email, !email.isEmpty { payload["contact"] = .array([.string("mailto:" + email)]) }
        let response = try await post(directory.newAccount, payload: .object(payload), kid: nil)
        guard let url = response.location else { throw AcmeError("\(directory.newAccount): the account answer has no Location") }
        remember(accountURL: url)
        return url
    }

    /// A JWS POST (`payload` nil: POST-as-GET) signed with the account key: by `kid`, or by
    /// `jwk` when `kid` is nil (newAccount). Error statuses become AcmeError with the problem
    /// document; a badNonce is retried once with the nonce that came with it.
    func post(_ url: String, payload: JSON?, kid: String?, accept: String = "application/json") async throws(AcmeError) -> AcmeHTTPResponse {
        var retried = false
        while true {
            let nonce = try await takeNonce()
            let signer: AcmeJWS.Signer = kid.map { .kid($0) } ?? .jwk(jwk)
            let key = accountKey
            let jws: JSON
            do {
                jws = try AcmeJWS.flattened(payload: payload, url: url, nonce: nonce, signer: signer) { (input) throws(AcmeJWS.SigningFailed) -> [UInt8] in
                    guard let der = try? key.signDER(input), let raw = AcmeJWS.rawSignature(fromDER: der) else {
                        throw AcmeJWS.SigningFailed("cannot sign with the account key: \(TLSError.drainOpenSSLErrors())")
                    }
                    return raw
                }
            } catch {
                throw AcmeError("\(url): \(error.reason)")
            }
            let response = try await http.request(
                "POST", url, body: Array(jws.serialized().utf8), contentType: "application/jose+json", accept: accept)
            if let fresh = response.replayNonce { store(nonce: fresh) }
            if response.status < 400 { return response }
            let problem = response.problem
            // The fresh nonce normally came with the error; without one, takeNonce asks newNonce.
            if problem?.shortType == "badNonce", !retried {
                retried = true
                continue
            }
            throw .server(url: url, status: response.status, problem: problem, retryAfter: response.retryAfter(now: Self.epochNow()))
        }
    }

    /// ARI suggested window; nil when the directory has no renewalInfo or anything fails.
    func renewalWindow(certificatePEM: String) async -> (start: Int, end: Int)? {
        guard let base = (try? await directory())?.renewalInfo, let id = AcmeCertificateInfo.ariCertID(chainPEM: certificatePEM) else {
            return nil
        }
        let url = base.hasSuffix("/") ? base + id : base + "/" + id
        guard let response = try? await http.request("GET", url), response.status == 200, let json = response.json else { return nil }
        return AcmeARI.suggestedWindow(json)
    }

    private func takeNonce() async throws(AcmeError) -> String {
        if let cached = popNonce() { return cached }
        let directory = try await self.directory()
        let response = try await http.request("HEAD", directory.newNonce)
        guard response.status < 400, let nonce = response.replayNonce else {
            throw AcmeError("\(directory.newNonce): no Replay-Nonce in the answer (status \(response.status))")
        }
        return nonce
    }
}
