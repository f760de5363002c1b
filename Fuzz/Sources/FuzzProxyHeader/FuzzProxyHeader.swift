import FuzzSupport
import Protocol

private let trusted = CIDRSet(["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"].compactMap { try? CIDR.parse($0).get() })

/// PROXY headers from balancers, in pieces as sockets deliver them: the parser decides within
/// its bounds and never returns more than it was given. The same bytes as text go through
/// the other parsers of client addresses: CIDR blocks and an X-Forwarded-For walk.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProxyHeader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var parser = ProxyHeaderParser()
    var fed = 0
    for piece in pieces(data, size) {
        fed += piece.count
        switch parser.feed(piece) {
        case .needMore:
            precondition(fed < ProxyHeaderParser.maxV2Size, "still waiting after \(fed) bytes")
            continue
        case .header(let header, let rest):
            precondition(rest.count < fed, "the rest is longer than the input")
            if case .proxied(let source, let destination) = header.addresses {
                precondition(source.address.family == destination.address.family, "mixed families")
            }
        case .refused:
            break
        }
        break
    }
    let text = String(decoding: bytes(data, size), as: UTF8.self)
    if case .success(let block) = CIDR.parse(text) {
        precondition(block.contains(block.network), "a block without its own network address")
    }
    _ = ForwardedFields.client(forwardedFor: [text], peer: IPAddress("10.0.0.1")!, trusted: trusted)
    return 0
}
