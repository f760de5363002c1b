import FuzzSupport
import Protocol

/// Everything authentication reads from outside: an `Authorization` value from any client,
/// an htpasswd file (an operator's, but of any content), and a forward-auth service's answer
/// in the pieces a socket delivers it in. Each decides within its bounds, never traps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAuth(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = bytes(data, size)
    let text = String(decoding: input, as: UTF8.self)
    if let credentials = BasicCredentials.parse(text) {
        precondition(!credentials.user.isEmpty && !credentials.user.contains(":"), "a user with a colon or none")
        precondition(!(credentials.user + credentials.password).unicodeScalars.contains { $0.value < 0x20 }, "control characters")
    }
    _ = BasicCredentials.parse("Basic " + text)
    let challenge = BasicCredentials.challenge(realm: text)
    precondition(!challenge.utf8.contains(where: { $0 == 13 || $0 == 10 }), "a challenge that ends the field")

    if case .success(let file) = Htpasswd.parse(input, file: "fuzz") {
        precondition(file.count <= Htpasswd.maxEntries)
    }

    var exchange = ForwardAuthExchange(copy: ["X-Auth-User"])
    var answer: ForwardAuthAnswer?
    for piece in pieces(data, size) {
        if case .answer(let a) = exchange.feed(piece) {
            answer = a
            break
        }
    }
    if answer == nil { answer = exchange.endOfInput() }
    if case .respond(let status, _, let body) = answer {
        precondition(body.count <= ForwardAuthExchange.maxBodyBytes, "an unbounded body")
        precondition(status == 401 || status == 403 || (300..<400).contains(status), "passed on status \(status)")
    }
    _ = ForwardAuthTarget.parse(text)
    return 0
}
