/// HTTP CONNECT (RFC 9110 §9.3.6): one request in authority form, one answer head; any 2xx
/// opens the tunnel and whatever follows the head is already tunnel data.
extension EgressProxyHandshake {
    func connectRequest() -> [UInt8] {
        let authority = gateway.description
        var fields: [(name: String, value: String)] = [("Host", authority), ("User-Agent", "fastgw/\(FastgwVersion.current)")]
        if let c = proxy.credentials {
            fields.append(("Proxy-Authorization", BasicCredentials(user: c.user, password: c.password).fieldValue))
        }
        return HTTPHead(startLine: ["CONNECT", authority, "HTTP/1.1"], fields: fields).serialized()
    }

    mutating func httpAnswer(_ parser: inout HTTPHeadParser, _ bytes: some Collection<UInt8>) -> Step {
        // Something that is not an HTTP proxy (a SOCKS server, a TLS port) is told apart by
        // its first bytes, without waiting for a head that will never come.
        let prefix = Array("HTTP/".utf8)
        if buffer.count < prefix.count {
            buffer += bytes.prefix(prefix.count - buffer.count)
            if !prefix.starts(with: buffer) {
                return fail(.protocolViolation, "did not answer CONNECT with HTTP (is it an HTTP proxy? for a SOCKS proxy write socks5://)")
            }
        }
        switch parser.feed(bytes) {
        case .needMore:
            state = .httpAnswer(parser)
            return .wait
        case .invalid(let reason):
            return fail(.protocolViolation, "sent an invalid answer to CONNECT: \(reason)")
        case .complete(let head, let rest):
            return httpStatus(head, rest: rest)
        }
    }

    private mutating func httpStatus(_ head: HTTPHead, rest: [UInt8]) -> Step {
        let code = head.startLine.count > 1 ? head.startLine[1] : ""
        guard head.startLine[0].hasPrefix("HTTP/1."), code.utf8.count == 3, let status = Int(code), status >= 100 else {
            return fail(.protocolViolation, "sent an invalid status line in answer to CONNECT")
        }
        let answer = "answered \(status)" + Self.reasonPhrase(head)
        switch status {
        case 200..<300:
            state = .open
            buffer = []
            return .connected(early: rest)
        case 407:
            let hint = proxy.credentials == nil
                ? "it wants a user name and password: set proxy_credentials"
                : "it refused the user name and password given"
            return fail(.authentication, "\(answer) (\(hint))")
        case 100..<200:
            // An interim answer before the final one is legal but no proxy sends it to
            // CONNECT; accepting it would mean reading heads without end.
            return fail(.protocolViolation, "\(answer) to CONNECT \(gateway), expected a final answer")
        default:
            return fail(.refused, "\(answer) to CONNECT \(gateway)")
        }
    }

    /// ` Proxy Authentication Required`: the proxy's words, printable ASCII only and short,
    /// since they go into logs.
    static func reasonPhrase(_ head: HTTPHead) -> String {
        guard head.startLine.count > 2 else { return "" }
        let printable = head.startLine[2].unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7f }.prefix(80)
        return printable.isEmpty ? "" : " " + String(String.UnicodeScalarView(printable))
    }
}
