import FuzzSupport
import Protocol

private let gateway = HostPort(host: "gw.example.com", port: 7443)
private let proxies = [
    "http://127.0.0.1:3128", "http://u:p@127.0.0.1:3128", "socks5://127.0.0.1:1080",
    "socks5h://127.0.0.1:1080", "socks5h://u:p@127.0.0.1:1080",
].compactMap { try? EgressProxy.parse($0).get() }

/// A proxy's answers, in pieces as sockets deliver them, to every kind of handshake (the
/// input's last byte picks it): the handshake reads within its bounds, reports at most once,
/// and never hands on more tunnel bytes than it was given. The same bytes as text go through
/// the proxy URL and NO_PROXY parsers, whose results never show a password.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEgressProxy(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let proxy = proxies[Int(data[size - 1]) % proxies.count]
    var handshake = EgressProxyHandshake(proxy: proxy, gateway: gateway, gatewayAddress: IPAddress("192.0.2.1"))
    var ended = false
    var fed = 0
    if case .send = handshake.start() {} else { preconditionFailure("a handshake that cannot start") }
    for piece in pieces(data, size) {
        fed += piece.count
        switch handshake.feed(piece) {
        case .send, .wait:
            precondition(fed <= EgressProxyHandshake.maxHTTPHead + 4096 + piece.count, "still reading after \(fed) bytes")
        case .connected(let early):
            precondition(early.count <= fed, "more tunnel bytes than were fed")
            ended = true
        case .failed(let failure):
            precondition(!ended, "failed after it connected")
            precondition(failure.description.hasPrefix("proxy 127.0.0.1:"), "a failure that does not name the proxy")
            ended = true
        }
        if ended { break }
    }
    let text = String(decoding: bytes(data, size), as: UTF8.self)
    if case .success(let parsed) = EgressProxy.parse(text, schemeOptional: true) {
        precondition(!parsed.description.contains("@"), "credentials in a description")
    }
    _ = EgressProxy.redacted(text)
    if case .success(let list) = NoProxyList.parse(text) {
        _ = list.matches(host: "gw.example.com")
    }
    return 0
}
