/// The ACME client publishes its answers here; the listeners read them (AcmeChallengeBoard).
extension AcmeChallengeBoard: AcmeChallengeSink {
    func publishHTTP01(token: String, keyAuthorization: String) {
        setHTTP01(token: token, keyAuthorization: keyAuthorization)
    }

    func publishTLSALPN01(host: String, certificatePEM: String, privateKeyPEM: String) {
        do {
            setTLSALPN01(host: host, context: try TLSContext.acmeValidation(certificatePEM: certificatePEM, privateKeyPEM: privateKeyPEM))
        } catch {
            // The challenge then fails at the CA, which the order reports.
            logger.error("cannot load the tls-alpn-01 certificate", metadata: ["host": "\(host)", "error": "\(error)"])
        }
    }

    func withdrawHTTP01(token: String) {
        setHTTP01(token: token, keyAuthorization: nil)
    }

    func withdrawTLSALPN01(host: String) {
        setTLSALPN01(host: host, context: nil)
    }
}
