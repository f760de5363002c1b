import FuzzSupport
import Protocol

/// Answers from an ACME server (which may be anyone's, or a man in the middle's for a
/// misconfigured `ca`), in pieces: the response parser, then everything the client reads
/// from a response: problem documents, resources, Link, Retry-After, Location URLs, ARI.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAcmeResponse(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var parser = AcmeHTTPResponseParser(maxBody: 64 * 1024)
    var response: AcmeHTTPResponse?
    do {
        for piece in pieces(data, size) {
            if case .complete(let r) = try parser.feed(piece) {
                response = r
                break
            }
        }
        if response == nil { response = try parser.endOfInput() }
    } catch {
        return 0
    }
    guard let response else { return 0 }
    precondition(response.body.count <= 64 * 1024, "body over the cap")
    _ = response.links(rel: "up")
    _ = response.retryAfter(now: 1_700_000_000)
    _ = response.problem?.description
    _ = response.location.flatMap(AcmeURL.init)?.authority
    if let json = response.json {
        _ = AcmeDirectory(json: json)
        _ = AcmeOrder(json: json)
        _ = AcmeAuthorization(json: json)?.challenge(preferring: [.http01, .tlsALPN01])
        _ = AcmeARI.suggestedWindow(json)
    }
    return 0
}
