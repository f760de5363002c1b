import FuzzSupport
import Protocol

private let users = ["carol": Array("s3cret".utf8)]

/// SOCKS5 negotiations from local clients, in pieces as sockets deliver them, with and
/// without RFC 1929: the server never holds more than one message and never answers after
/// it decided. The same bytes as text go through the `allow` rule parser and its matcher.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSocks5(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    for auth in [false, true] {
        var server = Socks5Server(users: auth ? users : nil)
        var fed = 0
        for piece in pieces(data, size) {
            fed += piece.count
            switch server.feed(piece) {
            case .needMore(let send):
                precondition(send.count <= 4, "more than a greeting and an auth answer at once")
                continue
            case .request(let request, _, let rest):
                precondition(rest.count < fed, "the rest is longer than the input")
                precondition(request.port > 0, "port 0 accepted")
                _ = VisitorDestination.decide(request, network: "corpnet")
            case .refused:
                break
            }
            break
        }
    }
    let text = String(decoding: bytes(data, size), as: UTF8.self)
    if case .success(let rule) = NetworkAllow.parseRule(text) {
        let allow = NetworkAllow(rules: [rule])
        precondition(rule.ports.lowerBound >= 1 && rule.ports.upperBound <= 65535, "port out of range")
        if case .block(let b) = rule.target {
            // A block permits its own network address, unless it is broader than the guarded
            // range that address lies in.
            let expected = NetworkAllow.guardedRange(of: b.network).map { b.prefixLength >= $0.prefixLength } ?? true
            precondition(allow.permits(b.network, port: rule.ports.lowerBound) == expected)
        }
        if case .name(let n) = rule.target, !n.hasPrefix("*.") { precondition(allow.permitsName(n, port: rule.ports.upperBound)) }
    }
    return 0
}
