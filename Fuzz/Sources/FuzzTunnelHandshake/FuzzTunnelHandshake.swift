import FuzzSupport
import Protocol

/// The tunnel handshake both ways: heads arriving in pieces at the gateway (then judged
/// against grants), and the gateway's answer as the agent reads it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTunnelHandshake(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let grants = [GatewayConfig.AgentGrant(name: "nas", token: "0123456789abcdef", allowPorts: [2222], allowHosts: ["*.example.com"])]
    var parser = HTTPHeadParser(limit: 8192)
    for piece in pieces(data, size) {
        switch parser.feed(piece) {
        case .needMore:
            continue
        case .invalid:
            break
        case .complete(let head, let rest):
            _ = TunnelHandshake.evaluate(head, grants: grants, draining: false)
            _ = TunnelHandshake.interpret(head, body: rest)
            _ = TunnelHandshake.interpret(head, body: rest, websocketAccept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            precondition(HTTPHeadParser.parse(bytes: head.serialized()) != nil, "a parsed head does not parse again")
        }
        break
    }
    let whole = bytes(data, size)
    _ = HTTPHeadParser.parse(bytes: whole)
    _ = whole.withUnsafeBytes { HTTPHeadParser.headEnd(in: $0, from: Int(size % 7) - 3) }
    return 0
}
