/// The HTTP/1.1 upgrade that opens a tunnel connection (DESIGN §2.1), both halves.
public enum TunnelHandshake {
    public static let path = "/.fastgw/v1/tunnel"
    /// The direct carrier's upgrade token, and the WebSocket carrier's subprotocol.
    public static let directProtocol = "fastgw-h2"
    /// RFC 6455 §1.3: appended to the client's key before hashing it into the accept value.
    public static let websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// How the tunnel's HTTP/2 bytes travel after the upgrade.
    public enum Carrier: String, Equatable, Sendable {
        /// Raw, straight after the 101 (`Upgrade: fastgw-h2`).
        case direct = "h2"
        /// Inside binary WebSocket messages, for middleboxes that pass only WebSocket upgrades.
        case websocket
    }

    /// Who dials: an agent (serves streams) or a visitor (opens them, `Fastgw-Visitor`).
    public enum Peer: String, Equatable, Sendable {
        case agent = "Fastgw-Agent"
        case visitor = "Fastgw-Visitor"
    }

    /// What the agent sends; with `websocketKey` it asks for the WebSocket carrier. An empty
    /// `token` sends no Authorization (an agent that authenticates by certificate only).
    /// A visitor sends the same request with its name in `Fastgw-Visitor`.
    public static func request(
        host: String, token: String, agent: String, instance: String, websocketKey: String? = nil, peer: Peer = .agent
    ) -> HTTPHead {
        var fields: [(name: String, value: String)] = [("Host", host)]
        if !token.isEmpty { fields.append(("Authorization", "Bearer \(token)")) }
        fields += [
            (peer.rawValue, agent),
            ("Fastgw-Instance", instance),
            ("Connection", "Upgrade"),
        ]
        if let websocketKey {
            fields += [
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", websocketKey),
                ("Sec-WebSocket-Protocol", directProtocol),
            ]
        } else {
            fields.append(("Upgrade", directProtocol))
        }
        return HTTPHead(startLine: ["GET", path, "HTTP/1.1"], fields: fields)
    }

    public struct Accepted: Equatable, Sendable {
        public var agent: String
        public var instance: String
        /// The grant's token, so that a reload can tell whether it changed since.
        public var token: String
        public var carrier: Carrier
        /// The agent's `Sec-WebSocket-Key`, which the 101 must answer.
        public var websocketKey: String?
        /// The client certificate presented on the connection (whatever the grant's `auth`),
        /// so that a reload can check it again.
        public var certificate: PeerCertificate?
        /// `agent` names a `[[visitor]]`, not an `[[agent]]`.
        public var peer: Peer = .agent

        public init(
            agent: String, instance: String, token: String, carrier: Carrier = .direct, websocketKey: String? = nil,
            certificate: PeerCertificate? = nil, peer: Peer = .agent
        ) {
            self.peer = peer
            self.agent = agent
            self.instance = instance
            self.token = token
            self.carrier = carrier
            self.websocketKey = websocketKey
            self.certificate = certificate
        }
    }

    public struct Rejection: Error, Equatable, Sendable {
        public var status: Int
        public var reason: String
        /// Set when the client certificate was the reason.
        public var certificate: CertificateRefusal.Code?

        public init(status: Int, reason: String, certificate: CertificateRefusal.Code? = nil) {
            self.status = status
            self.reason = reason
            self.certificate = certificate
        }

        init(_ refusal: CertificateRefusal) {
            self.init(status: refusal.status, reason: refusal.message, certificate: refusal.code)
        }
    }

    /// The gateway's decision on a request head and the client certificate the TLS layer
    /// read (nil: none was presented or none was asked for). Tokens are compared in constant
    /// time and never echoed back.
    /// A request naming itself with `Fastgw-Visitor` is judged against `visitors` instead.
    public static func evaluate(
        _ head: HTTPHead, grants agentGrants: [GatewayConfig.AgentGrant], visitors: [GatewayConfig.AgentGrant] = [],
        draining: Bool, certificate: PeerCertificate? = nil
    ) -> Result<Accepted, Rejection> {
        guard head.startLine.count == 3, head.startLine[2] == "HTTP/1.1" else {
            return .failure(.init(status: 400, reason: "expected an HTTP/1.1 request"))
        }
        guard head.startLine[0] == "GET", head.startLine[1] == path else {
            return .failure(.init(status: 400, reason: "expected GET \(path)"))
        }
        guard head.tokens("Connection").contains("upgrade"), let upgrade = head["Upgrade"] else {
            return .failure(.init(status: 400, reason: "missing Connection: Upgrade / Upgrade header"))
        }
        let carrier: Carrier
        var websocketKey: String?
        switch upgrade.asciiLowercased() {
        case directProtocol:
            carrier = .direct
        case "websocket":
            carrier = .websocket
            guard head["Sec-WebSocket-Version"] == "13" else {
                return .failure(.init(status: 426, reason: "WebSocket version \(head["Sec-WebSocket-Version"] ?? "(none)") not supported; use 13"))
            }
            guard let key = head["Sec-WebSocket-Key"], isWebSocketKey(key) else {
                return .failure(.init(status: 400, reason: "missing or invalid Sec-WebSocket-Key"))
            }
            guard head.tokens("Sec-WebSocket-Protocol").contains(directProtocol) else {
                return .failure(.init(status: 400, reason: "Sec-WebSocket-Protocol must offer \(directProtocol)"))
            }
            websocketKey = key
        default:
            return .failure(.init(status: 426, reason: "carrier \"\(upgrade)\" not supported; use \(directProtocol) or websocket"))
        }
        let peer: Peer = head["Fastgw-Agent"] == nil && head["Fastgw-Visitor"] != nil ? .visitor : .agent
        let grants = peer == .visitor ? visitors : agentGrants
        guard let agent = head[peer.rawValue], !agent.isEmpty else {
            return .failure(.init(status: 400, reason: "missing Fastgw-Agent header"))
        }
        let instance = head["Fastgw-Instance"] ?? ""
        let grant: GatewayConfig.AgentGrant
        // A name whose grant takes a certificate only is identified by it; every other
        // request (unknown names included) is judged by its token first.
        if let named = grants.first(where: { $0.name == agent }), !named.auth.usesToken {
            grant = named
        } else {
            switch tokenGrant(head, agent: agent, grants: grants, peer: peer) {
            case .success(let g): grant = g
            case .failure(let r): return .failure(r)
            }
        }
        if grant.auth.usesCertificate, let match = grant.certificate,
           let refusal = CertificateIdentity.check(certificate, agent: agent, match: match, peer: peer) {
            return .failure(Rejection(refusal))
        }
        if draining {
            return .failure(.init(status: 503, reason: "gateway is draining; try another gateway"))
        }
        return .success(Accepted(
            agent: agent, instance: instance, token: grant.token, carrier: carrier, websocketKey: websocketKey,
            certificate: certificate, peer: peer))
    }

    /// The grant whose token the request carries, when that grant is `agent`'s.
    private static func tokenGrant(
        _ head: HTTPHead, agent: String, grants: [GatewayConfig.AgentGrant], peer: Peer
    ) -> Result<GatewayConfig.AgentGrant, Rejection> {
        guard let auth = head["Authorization"], auth.hasPrefix("Bearer ") else {
            return .failure(.init(status: 401, reason: "missing bearer token"))
        }
        let presented = Array(auth.utf8.dropFirst("Bearer ".utf8.count))
        let presentedHash = SHA256.hash(presented)
        // Check every grant so the time taken does not reveal which name exists.
        var matched: GatewayConfig.AgentGrant?
        for grant in grants where grant.accepts(presented, presentedHash: presentedHash) {
            matched = grant
        }
        let what = peer == .visitor ? "visitor" : "agent"
        guard let grant = matched else {
            return .failure(.init(status: 401, reason: "invalid token for \(what) \"\(agent)\""))
        }
        guard grant.name == agent else {
            return .failure(.init(status: 403, reason: "token does not belong to \(what) \"\(agent)\""))
        }
        return .success(grant)
    }

    /// Why a connection accepted earlier no longer holds under `grant` (after a reload), or
    /// nil when it still does. `certificate` carries the verification against the new
    /// `client_ca` / `client_crl`.
    public static func recheck(
        _ accepted: (token: String, certificate: PeerCertificate?), agent: String, grant: GatewayConfig.AgentGrant,
        peer: Peer = .agent
    ) -> String? {
        if grant.auth.usesToken, grant.token != accepted.token {
            return "token of \(peer == .visitor ? "visitor" : "agent") \"\(agent)\" changed"
        }
        if grant.auth.usesCertificate, let match = grant.certificate,
           let refusal = CertificateIdentity.check(accepted.certificate, agent: agent, match: match, peer: peer) {
            return refusal.message
        }
        return nil
    }

    /// RFC 6455 §4.1: a key is 16 bytes in base64, 24 characters ending in "==".
    static func isWebSocketKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        return bytes[..<22].allSatisfy { b in
            (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b == 0x2b || b == 0x2f
        }
    }

    /// The 101; the WebSocket carrier's carries `websocketAccept` (computed from the key).
    public static func switchingProtocols(carrier: Carrier = .direct, websocketAccept: String? = nil) -> HTTPHead {
        var fields: [(name: String, value: String)] = [("Connection", "Upgrade")]
        switch carrier {
        case .direct:
            fields.append(("Upgrade", directProtocol))
        case .websocket:
            fields += [
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Accept", websocketAccept ?? ""),
                ("Sec-WebSocket-Protocol", directProtocol),
            ]
        }
        return HTTPHead(startLine: ["HTTP/1.1", "101", "Switching Protocols"], fields: fields)
    }

    /// A refusal with a one-line text body that the agent logs verbatim.
    public static func refusal(_ r: Rejection) -> [UInt8] {
        let body = r.reason + "\n"
        let head = HTTPHead(startLine: ["HTTP/1.1", String(r.status), reasonPhrase(r.status)], fields: [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", String(body.utf8.count)),
            ("Connection", "close"),
        ])
        return head.serialized() + Array(body.utf8)
    }

    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 101: return "Switching Protocols"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 408: return "Request Timeout"
        case 426: return "Upgrade Required"
        case 503: return "Service Unavailable"
        default: return "Error"
        }
    }

    /// The agent's reading of the gateway's answer.
    public enum Answer: Equatable, Sendable {
        case upgraded
        /// A refusal; `reason` is the body when it arrived whole, else the status line's reason.
        case refused(status: Int, reason: String)
        case malformed(String)
    }

    /// `websocketAccept`: the accept value the WebSocket carrier's 101 must carry (nil when
    /// the direct carrier was asked for).
    public static func interpret(_ head: HTTPHead, body: [UInt8], websocketAccept: String? = nil) -> Answer {
        guard head.startLine.count >= 2, head.startLine[0].hasPrefix("HTTP/1."),
              let status = Int(head.startLine[1]) else {
            return .malformed("not an HTTP response")
        }
        if status == 101 {
            guard let accept = websocketAccept else {
                guard head["Upgrade"]?.asciiLowercased() == directProtocol else {
                    return .malformed("101 without Upgrade: \(directProtocol)")
                }
                return .upgraded
            }
            guard head["Upgrade"]?.asciiLowercased() == "websocket" else { return .malformed("101 without Upgrade: websocket") }
            guard head["Sec-WebSocket-Accept"] == accept else { return .malformed("101 with a wrong Sec-WebSocket-Accept") }
            guard head["Sec-WebSocket-Protocol"] == directProtocol else {
                return .malformed("101 without Sec-WebSocket-Protocol: \(directProtocol)")
            }
            return .upgraded
        }
        let text = String(decoding: body.prefix(512), as: UTF8.self).trimmingTrailingNewlines()
        let reason = text.isEmpty ? head.startLine.dropFirst(2).joined(separator: " ") : text
        return .refused(status: status, reason: reason)
    }
}

public enum ConstantTime {
    /// Compares without an early exit, so timing does not tell how many leading bytes matched.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        if a.count != b.count { diff |= 1 }
        for i in 0..<a.count {
            diff |= a[i] ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }
}
