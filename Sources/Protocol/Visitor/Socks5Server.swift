/// The server side of a SOCKS5 negotiation (RFC 1928, CONNECT only; RFC 1929 user/password
/// when `users` is given), as a state machine apart from any socket: bytes go in as they
/// arrive, replies to write come out. It buffers at most one message (the longest is an
/// RFC 1929 request, 513 bytes), so a client cannot make it hold more.
public struct Socks5Server: Sendable {
    /// RFC 1928 §6 reply codes.
    public enum Reply: UInt8, Sendable {
        case succeeded = 0x00
        case generalFailure = 0x01
        case notAllowed = 0x02
        case networkUnreachable = 0x03
        case hostUnreachable = 0x04
        case connectionRefused = 0x05
        case ttlExpired = 0x06
        case commandNotSupported = 0x07
        case addressTypeNotSupported = 0x08
    }

    /// What the client asked to connect to: a domain name as sent, or an address's text.
    public struct Request: Equatable, Sendable {
        public var host: String
        public var port: Int
        public var isDomain: Bool

        public init(host: String, port: Int, isDomain: Bool) {
            self.host = host
            self.port = port
            self.isDomain = isDomain
        }
    }

    public enum Outcome: Equatable, Sendable {
        /// Write `send` (possibly empty) and wait for more bytes.
        case needMore(send: [UInt8])
        /// The CONNECT request; `rest` is what the client sent after it (it should wait for
        /// the reply, but may not). The caller answers with `reply(_:)`.
        case request(Request, send: [UInt8], rest: [UInt8])
        /// Write `send` (a refusal the client can read, or nothing) and close.
        case refused(send: [UInt8], reason: String)
    }

    private enum State: Sendable {
        case greeting, authentication, request, done
    }

    /// The refusal's reason when RFC 1929 credentials do not match (what a caller throttles).
    public static let wrongCredentials = "wrong user or password"

    /// The longest message a client may send: RFC 1929's 1+1+255+1+255.
    public static let maxMessage = 513

    private var users: [String: [UInt8]]?
    private var state = State.greeting
    private var pending: [UInt8] = []

    /// `users`: name → password for RFC 1929; nil asks for no authentication.
    public init(users: [String: [UInt8]]? = nil) {
        self.users = users
    }

    /// From now on no credentials match (the client's address got blocked meanwhile): the
    /// next RFC 1929 message is answered as a wrong password without a comparison.
    public mutating func refuseAllCredentials() {
        if users != nil { users = [:] }
    }

    public mutating func feed(_ bytes: some Collection<UInt8>) -> Outcome {
        guard state != .done else { return .refused(send: [], reason: "negotiation already over") }
        pending.append(contentsOf: bytes)
        var send: [UInt8] = []
        while true {
            let step: Step
            switch state {
            case .greeting: step = greeting()
            case .authentication: step = authentication()
            case .request: step = request()
            case .done: return .refused(send: send, reason: "negotiation already over")
            }
            switch step {
            case .incomplete:
                // Each message is bounded by its own length fields; this holds whatever sits
                // in between (a client that keeps sending before its reply).
                if pending.count > Self.maxMessage {
                    state = .done
                    return .refused(send: send, reason: "message longer than \(Self.maxMessage) bytes")
                }
                return .needMore(send: send)
            case .advanced(let reply):
                send += reply
            case .finished(let r):
                state = .done
                let rest = pending
                pending = []
                return .request(r, send: send, rest: rest)
            case .failed(let reply, let reason):
                state = .done
                return .refused(send: send + reply, reason: reason)
            }
        }
    }

    private enum Step {
        case incomplete
        case advanced(reply: [UInt8])
        case finished(Request)
        case failed(reply: [UInt8], reason: String)
    }

    private mutating func greeting() -> Step {
        guard pending.count >= 2 else { return .incomplete }
        guard pending[0] == 5 else { return .failed(reply: [], reason: "not a SOCKS5 greeting (version \(pending[0]))") }
        let count = Int(pending[1])
        guard pending.count >= 2 + count else { return .incomplete }
        let methods = pending[2..<(2 + count)]
        pending.removeFirst(2 + count)
        if users != nil {
            guard methods.contains(2) else {
                return .failed(reply: [5, 0xff], reason: "client does not offer user/password authentication")
            }
            state = .authentication
            return .advanced(reply: [5, 2])
        }
        guard methods.contains(0) else {
            return .failed(reply: [5, 0xff], reason: "client does not offer \"no authentication\"")
        }
        state = .request
        return .advanced(reply: [5, 0])
    }

    private mutating func authentication() -> Step {
        guard pending.count >= 2 else { return .incomplete }
        guard pending[0] == 1 else { return .failed(reply: [1, 1], reason: "not an RFC 1929 request (version \(pending[0]))") }
        let userLength = Int(pending[1])
        guard pending.count >= 2 + userLength + 1 else { return .incomplete }
        let passwordLength = Int(pending[2 + userLength])
        let total = 3 + userLength + passwordLength
        guard pending.count >= total else { return .incomplete }
        let user = String(decoding: pending[2..<(2 + userLength)], as: UTF8.self)
        let password = Array(pending[(3 + userLength)..<total])
        pending.removeFirst(total)
        // Every user is compared so the time taken does not tell which names exist.
        var ok = false
        for (name, secret) in users ?? [:] {
            let match = ConstantTime.equal(Array(name.utf8), Array(user.utf8)) && ConstantTime.equal(secret, password)
            ok = ok || match
        }
        guard ok else { return .failed(reply: [1, 1], reason: Self.wrongCredentials) }
        state = .request
        return .advanced(reply: [1, 0])
    }

    private mutating func request() -> Step {
        guard pending.count >= 5 else { return .incomplete }
        guard pending[0] == 5 else { return .failed(reply: [], reason: "not a SOCKS5 request (version \(pending[0]))") }
        let command = pending[1]
        let type = pending[3]
        let addressLength: Int
        switch type {
        case 1: addressLength = 4
        case 4: addressLength = 16
        case 3: addressLength = 1 + Int(pending[4])
        default:
            return .failed(reply: Self.reply(.addressTypeNotSupported), reason: "address type \(type) not supported")
        }
        let total = 4 + addressLength + 2
        guard pending.count >= total else { return .incomplete }
        guard command == 1 else {
            return .failed(reply: Self.reply(.commandNotSupported), reason: "only CONNECT is supported (command \(command))")
        }
        let address = Array(pending[4..<(4 + addressLength)])
        let port = Int(pending[total - 2]) << 8 | Int(pending[total - 1])
        pending.removeFirst(total)
        let request: Request
        switch type {
        case 3:
            guard address.count > 1 else { return .failed(reply: Self.reply(.hostUnreachable), reason: "empty domain name") }
            request = Request(host: String(decoding: address.dropFirst(), as: UTF8.self), port: port, isDomain: true)
        default:
            request = Request(host: IPAddress(bytes: address).map { "\($0)" } ?? "?", port: port, isDomain: false)
        }
        guard port != 0 else { return .failed(reply: Self.reply(.hostUnreachable), reason: "port 0") }
        return .finished(request)
    }

    /// A reply to the CONNECT request; the bound address is not meaningful through a tunnel
    /// and is sent as 0.0.0.0:0.
    public static func reply(_ code: Reply) -> [UInt8] {
        [5, code.rawValue, 0, 1, 0, 0, 0, 0, 0, 0]
    }
}
