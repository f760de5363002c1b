import FuzzSupport
import Protocol

/// What a public client controls on the ACME paths: a ClientHello's ALPN and server_name
/// extension bodies (read for TLS-ALPN-01 on every https handshake) and the request path an
/// http listener checks for an HTTP-01 token. The first byte says which.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAcmeClientHello(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let body = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch data[0] % 3 {
    case 0:
        // Only a list of exactly one protocol, acme-tls/1, counts.
        if AcmeALPNOffer.onlyACME(alpnExtension: body) {
            precondition(body == [0, 11, 10] + Array(AcmeALPNOffer.protocolName.utf8), "accepted \(body)")
        }
    case 1:
        if let name = AcmeALPNOffer.serverName(extension: body) {
            precondition(!name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "name \(name.debugDescription)")
            precondition(name == name.lowercased(), "not lowercased")
        }
    default:
        let path = "/.well-known/acme-challenge/" + String(decoding: body, as: UTF8.self)
        if let token = AcmeChallengePath.token(inPath: path) {
            precondition(path == AcmeChallengePath.prefix + token, "token is not the rest of the path")
            precondition(token.count <= AcmeChallengePath.maximumTokenLength, "token too long")
            precondition(!token.contains("/") && !token.contains("."), "token \(token.debugDescription)")
        }
    }
    return 0
}
