/// The HTTP/1.1 upgrade that opens a tunnel connection (DESIGN §2.1), both halves.
public enum TunnelHandshake {
    public static let path = "/.fastgw/v1/tunnel"
    public static let directProtocol = "fastgw-h2"

    /// What the agent sends.
    public static func request(host: String, token: String, agent: String, instance: String) -> HTTPHead {
        HTTPHead(startLine: ["GET", path, "HTTP/1.1"], fields: [
            ("Host", host),
            ("Authorization", "Bearer \(token)"),
            ("Fastgw-Agent", agent),
            ("Fastgw-Instance", instance),
            ("Connection", "Upgrade"),
            ("Upgrade", directProtocol),
        ])
    }

    public struct Accepted: Equatable, Sendable {
        public var agent: String
        public var instance: String
        /// The grant's token, so that a reload can tell whether it changed since.
        public var token: String

        public init(agent: String, instance: String, token: String) {
            self.agent = agent
            self.instance = instance
            self.token = token
        }
    }

    public struct Rejection: Error, Equatable, Sendable {
        public var status: Int
        public var reason: String

        public init(status: Int, reason: String) {
            self.status = status
            self.reason = reason
        }
    }

    /// The gateway's decision on a request head. Tokens are compared in constant time and
    /// never echoed back.
    public static func evaluate(
        _ head: HTTPHead, grants: [GatewayConfig.AgentGrant], draining: Bool
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
        guard upgrade.lowercased() == directProtocol else {
            return .failure(.init(status: 426, reason: "carrier \"\(upgrade)\" not supported; use \(directProtocol)"))
        }
        guard let agent = head["Fastgw-Agent"], !agent.isEmpty else {
            return .failure(.init(status: 400, reason: "missing Fastgw-Agent header"))
        }
        let instance = head["Fastgw-Instance"] ?? ""
        guard let auth = head["Authorization"], auth.hasPrefix("Bearer ") else {
            return .failure(.init(status: 401, reason: "missing bearer token"))
        }
        let presented = Array(auth.utf8.dropFirst("Bearer ".utf8.count))
        // Check every grant so the time taken does not reveal which name exists.
        var matched: GatewayConfig.AgentGrant?
        for grant in grants where ConstantTime.equal(presented, Array(grant.token.utf8)) {
            matched = grant
        }
        guard let grant = matched else {
            return .failure(.init(status: 401, reason: "invalid token for agent \"\(agent)\""))
        }
        guard grant.name == agent else {
            return .failure(.init(status: 403, reason: "token does not belong to agent \"\(agent)\""))
        }
        if draining {
            return .failure(.init(status: 503, reason: "gateway is draining; try another gateway"))
        }
        return .success(Accepted(agent: agent, instance: instance, token: grant.token))
    }

    public static func switchingProtocols() -> HTTPHead {
        HTTPHead(startLine: ["HTTP/1.1", "101", "Switching Protocols"], fields: [
            ("Connection", "Upgrade"),
            ("Upgrade", directProtocol),
        ])
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

    public static func interpret(_ head: HTTPHead, body: [UInt8]) -> Answer {
        guard head.startLine.count >= 2, head.startLine[0].hasPrefix("HTTP/1."),
              let status = Int(head.startLine[1]) else {
            return .malformed("not an HTTP response")
        }
        if status == 101 {
            guard head["Upgrade"]?.lowercased() == directProtocol else {
                return .malformed("101 without Upgrade: \(directProtocol)")
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
