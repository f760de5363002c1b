import Protocol

extension HTTPServerHandler {
    /// HTTP-01 (RFC 8555 §8.3): a token of the gateway's pending order is answered here,
    /// ahead of routes and policies, on plain http listeners only (the CA asks on port 80).
    /// Any other path under /.well-known/acme-challenge/ goes on to the routes, so an
    /// upstream that runs its own ACME client keeps working.
    func answersAcmeChallenge(_ ex: HTTPExchange) -> Bool {
        guard tls == nil, ex.request.method == "GET" || ex.request.method == "HEAD",
            let token = AcmeChallengePath.token(inPath: ex.request.path),
            let keyAuthorization = gateway.acme.board.http01(token: token)
        else { return false }
        var answer = HTTPRefusal(200, "acme http-01 challenge answered")
        answer.body = Array(keyAuthorization.utf8)
        answer.fields = [HeaderField("content-type", "application/octet-stream")]
        self.answer(ex, answer)
        return true
    }
}
