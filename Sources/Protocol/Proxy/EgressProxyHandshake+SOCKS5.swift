/// SOCKS5 (RFC 1928): method selection, then RFC 1929 username/password when the proxy asks
/// for it, then CONNECT to the gateway's address (`socks5`) or name (`socks5h`). Each answer
/// has a size known from its first bytes; nothing beyond it is accepted before the tunnel
/// is open.
extension EgressProxyHandshake {
    static let socksVersion: UInt8 = 5
    static let noAuthentication: UInt8 = 0
    static let usernamePassword: UInt8 = 2
    static let noAcceptableMethod: UInt8 = 0xff

    mutating func socksAnswer() -> Step {
        switch state {
        case .socksMethod:
            if let first = buffer.first, first != Self.socksVersion { return wrongVersion(first) }
            guard buffer.count >= 2 else { return .wait }
            if buffer.count > 2 { return extraBytes(after: "its method selection") }
            let method = buffer[1]
            buffer = []
            switch method {
            case Self.noAuthentication:
                state = .socksReply
                return .send(connectRequest5())
            case Self.usernamePassword where proxy.credentials != nil:
                state = .socksAuthentication
                return .send(authenticationRequest())
            case Self.noAcceptableMethod:
                let hint = proxy.credentials == nil
                    ? "it wants a user name and password: set proxy_credentials"
                    : "not even username/password"
                return fail(.authentication, "accepts none of the SOCKS5 authentication methods offered (\(hint))")
            default:
                return fail(.protocolViolation, "chose SOCKS5 authentication method \(method), which fastgw did not offer")
            }
        case .socksAuthentication:
            // RFC 1929 §2: the subnegotiation has its own version, 1.
            if let first = buffer.first, first != 1 {
                return fail(.protocolViolation, "answered the SOCKS5 user name and password with version \(first), expected 1 (RFC 1929)")
            }
            guard buffer.count >= 2 else { return .wait }
            if buffer.count > 2 { return extraBytes(after: "its authentication answer") }
            let status = buffer[1]
            buffer = []
            guard status == 0 else {
                return fail(.authentication, "refused the SOCKS5 user name and password (RFC 1929 status \(status))")
            }
            state = .socksReply
            return .send(connectRequest5())
        case .socksReply:
            return connectReply()
        default:
            return .wait
        }
    }

    /// VER CMD=CONNECT RSV ATYP DST.ADDR DST.PORT (RFC 1928 §4).
    private func connectRequest5() -> [UInt8] {
        var out: [UInt8] = [Self.socksVersion, 1, 0]
        if let address = gatewayAddress {
            out.append(address.family == .v4 ? 1 : 4)
            out += address.bytes
        } else {
            let name = Array(gateway.host.utf8)  // at most 255 bytes: checked by `start`
            out += [3, UInt8(name.count)] + name
        }
        out += [UInt8(gateway.port >> 8), UInt8(gateway.port & 0xff)]
        return out
    }

    /// VER=1 ULEN UNAME PLEN PASSWD (RFC 1929 §2); lengths are checked when credentials are read.
    private func authenticationRequest() -> [UInt8] {
        guard let c = proxy.credentials else { return [] }
        let user = Array(c.user.utf8), password = Array(c.password.utf8)
        return [1, UInt8(user.count)] + user + [UInt8(password.count)] + password
    }

    /// VER REP RSV ATYP BND.ADDR BND.PORT: the size follows from ATYP (and, for a name, its
    /// length byte).
    private mutating func connectReply() -> Step {
        if let first = buffer.first, first != Self.socksVersion { return wrongVersion(first) }
        if buffer.count >= 2, buffer[1] != 0 {
            let code = buffer[1]
            return fail(.refused, "could not connect to \(gateway): \(Self.replyText(code)) (SOCKS5 reply \(code))")
        }
        guard buffer.count >= 4 else { return .wait }
        let size: Int
        switch buffer[3] {
        case 1: size = 4 + 4 + 2
        case 4: size = 4 + 16 + 2
        case 3:
            guard buffer.count >= 5 else { return .wait }
            size = 4 + 1 + Int(buffer[4]) + 2
        default:
            return fail(.protocolViolation, "sent a SOCKS5 reply with unknown address type \(buffer[3])")
        }
        guard buffer.count >= size else { return .wait }
        let early = Array(buffer[size...])
        buffer = []
        state = .open
        return .connected(early: early)
    }

    private mutating func wrongVersion(_ version: UInt8) -> Step {
        // "H" is how an HTTP proxy's answer starts.
        let hint = version == UInt8(ascii: "H") ? "; it looks like an HTTP proxy: write http://" : ""
        return fail(.protocolViolation, "answered with SOCKS version \(version), expected 5 (is it a SOCKS5 proxy?\(hint))")
    }

    private mutating func extraBytes(after what: String) -> Step {
        fail(.protocolViolation, "sent more bytes than \(what) before fastgw asked for more")
    }

    /// RFC 1928 §6.
    static func replyText(_ code: UInt8) -> String {
        switch code {
        case 1: return "general SOCKS server failure"
        case 2: return "connection not allowed by ruleset"
        case 3: return "network unreachable"
        case 4: return "host unreachable"
        case 5: return "connection refused"
        case 6: return "TTL expired"
        case 7: return "command not supported"
        case 8: return "address type not supported"
        default: return "unknown error"
        }
    }
}
