/// A `host:port` pair as written in config (`"0.0.0.0:7443"`, `"[::1]:80"`, `"gw.example.com:7443"`).
public struct HostPort: Hashable, Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; bracketed IPv6 literals keep their brackets off `host`.
    public static func parse(_ text: String) -> Result<HostPort, HostPortError> {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return .failure(.malformed) }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":") else { return .failure(.missingPort) }
            portPart = after.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return .failure(.missingPort) }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { return .failure(.malformed) }
        }
        guard !hostPart.isEmpty else { return .failure(.missingHost) }
        guard let port = Int(portPart) else { return .failure(.badPort(String(portPart))) }
        guard (1...65535).contains(port) else { return .failure(.portOutOfRange(port)) }
        return .success(HostPort(host: String(hostPart), port: port))
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

public enum HostPortError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed, missingPort, missingHost, badPort(String), portOutOfRange(Int)

    public var description: String {
        switch self {
        case .malformed: return "expected host:port (IPv6 in brackets: [::1]:80)"
        case .missingPort: return "missing :port"
        case .missingHost: return "missing host before :port"
        case .badPort(let p): return "port \"\(p)\" is not a number"
        case .portOutOfRange(let p): return "port \(p) out of range (1-65535)"
        }
    }
}

/// Where an agent service's upstream lives: a TCP address or a Unix socket path.
public enum UpstreamAddress: Hashable, Sendable, CustomStringConvertible {
    case tcp(HostPort)
    case unix(path: String)

    public static func parse(_ text: String) -> Result<UpstreamAddress, HostPortError> {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") else { return .failure(.malformed) }
            return .success(.unix(path: path))
        }
        return HostPort.parse(text).map(UpstreamAddress.tcp)
    }

    public var description: String {
        switch self {
        case .tcp(let hp): return hp.description
        case .unix(let path): return "unix:\(path)"
        }
    }
}
