/// Opening a byte stream to a gateway through an egress proxy, without I/O: the caller
/// writes what `start` and `feed` ask it to send, feeds every byte the proxy answers, and
/// once `connected` hands the stream (and the `early` bytes that came with the proxy's
/// answer, which already belong to the tunnel) to TLS. What is read from the proxy is
/// bounded: an HTTP answer head by `maxHTTPHead`, SOCKS replies by their fixed sizes (a
/// proxy that sends more than its reply before the tunnel is open is refused).
public struct EgressProxyHandshake: Sendable {
    public enum Step: Equatable, Sendable {
        /// Write these bytes, then wait for the proxy's answer.
        case send([UInt8])
        /// Feed more bytes.
        case wait
        /// The tunnel is open; `early` are its first bytes from the gateway's side.
        case connected(early: [UInt8])
        case failed(EgressProxyFailure)
    }

    /// Longest HTTP answer head read (status line and fields, RFC 9110 §9.3.6).
    public static let maxHTTPHead = 16 * 1024

    enum State: Sendable {
        case idle
        case httpAnswer(HTTPHeadParser)
        case socksMethod
        case socksAuthentication
        case socksReply
        case open
        case failed
    }

    public let proxy: EgressProxy
    public let gateway: HostPort
    /// The gateway's address when the request carries one (RFC 1928 ATYP 1 or 4): a gateway
    /// written as an address, or one `socks5://` had the agent resolve.
    let gatewayAddress: IPAddress?
    var state = State.idle
    /// Bytes of a SOCKS reply, or the first bytes of an HTTP answer, read so far.
    var buffer: [UInt8] = []

    /// `gatewayAddress`: needed when `needsAddress` says so, ignored otherwise.
    public init(proxy: EgressProxy, gateway: HostPort, gatewayAddress: IPAddress? = nil) {
        self.proxy = proxy
        self.gateway = gateway
        self.gatewayAddress = IPAddress(gateway.host) ?? (proxy.scheme == .socks5 ? gatewayAddress : nil)
    }

    /// Whether the agent resolves the gateway's name before the handshake: `socks5://`
    /// sends an address; `socks5h://` and `http://` send the name for the proxy to resolve.
    public static func needsAddress(proxy: EgressProxy, gateway: HostPort) -> Bool {
        proxy.scheme == .socks5 && IPAddress(gateway.host) == nil
    }

    /// The first bytes to write, once the connection to the proxy is up.
    public mutating func start() -> Step {
        guard case .idle = state else { return fail(.protocolViolation, "handshake started twice") }
        switch proxy.scheme {
        case .http:
            state = .httpAnswer(HTTPHeadParser(limit: Self.maxHTTPHead))
            return .send(connectRequest())
        case .socks5, .socks5h:
            if proxy.scheme == .socks5 && gatewayAddress == nil {
                return fail(.unreachable, "cannot send the address of \(gateway.host): it was not resolved")
            }
            if proxy.scheme == .socks5h && gateway.host.utf8.count > 255 {
                return fail(.unreachable, "cannot be sent the gateway's name: SOCKS5 names are at most 255 bytes")
            }
            state = .socksMethod
            // Offer username/password only when there are credentials (RFC 1928 §3).
            return .send(proxy.credentials == nil ? [5, 1, 0] : [5, 2, 0, 2])
        }
    }

    /// Bytes the proxy sent.
    public mutating func feed(_ bytes: some Collection<UInt8>) -> Step {
        switch state {
        case .idle:
            return fail(.protocolViolation, "sent \(bytes.count) bytes before fastgw asked anything")
        case .httpAnswer(var parser):
            return httpAnswer(&parser, bytes)
        case .socksMethod, .socksAuthentication, .socksReply:
            buffer.append(contentsOf: bytes)
            return socksAnswer()
        case .open:
            return .connected(early: Array(bytes))
        case .failed:
            return .wait
        }
    }

    mutating func fail(_ kind: EgressProxyFailure.Kind, _ what: String) -> Step {
        state = .failed
        buffer = []
        return .failed(EgressProxyFailure(kind: kind, description: "proxy \(proxy.endpoint) \(what)"))
    }
}

/// Why the path through an egress proxy could not be opened. `description` names the proxy
/// and what it answered, and never a password.
public struct EgressProxyFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The proxy wants credentials, or refused the ones it got.
        case authentication
        /// The proxy answered, but would not open the path to the gateway.
        case refused
        /// The answer was not the protocol the scheme names.
        case protocolViolation
        /// No answer: connection closed or refused, deadline passed, name not resolved.
        case unreachable
    }

    public let kind: Kind
    public let description: String

    public init(kind: Kind, description: String) {
        self.kind = kind
        self.description = description
    }

    /// Credentials will not fix themselves: such a failure is retried as slowly as a
    /// gateway's 401 (a proxy may lock an account that keeps failing).
    public var isAuthentication: Bool { kind == .authentication }

    public static func closed(_ proxy: EgressProxy) -> EgressProxyFailure {
        EgressProxyFailure(kind: .unreachable, description: "proxy \(proxy.endpoint) closed the connection before the path to the gateway was open")
    }

    public static func timedOut(_ proxy: EgressProxy, seconds: Int) -> EgressProxyFailure {
        EgressProxyFailure(kind: .unreachable, description: "proxy \(proxy.endpoint) did not open the path to the gateway within \(seconds) s")
    }
}
