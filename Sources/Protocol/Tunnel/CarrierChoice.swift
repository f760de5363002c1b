/// Which carrier an agent's tunnel connection asks for at its next dial (DESIGN §2.1). With
/// `transport = "auto"` the direct carrier comes first; a handshake that something on the way
/// broke — an answer that is not the gateway's own 401/403/503, or no proper answer at all —
/// switches to the WebSocket carrier, and the same on that carrier switches back, so a
/// middlebox that comes or goes is followed. A refusal by the gateway never switches, and a
/// fallback connection that ends is followed by a try of the direct carrier again.
public struct CarrierChoice: Equatable, Sendable {
    public let transport: AgentConfig.Transport
    public private(set) var current: TunnelHandshake.Carrier

    public init(transport: AgentConfig.Transport) {
        self.transport = transport
        self.current = transport == .websocket ? .websocket : .direct
    }

    /// The handshake got an answer other than 101 (`status`), or none (`status` nil). Returns
    /// the carrier the next dial uses when it changed.
    public mutating func handshakeFailed(status: Int?) -> TunnelHandshake.Carrier? {
        guard transport == .auto else { return nil }
        if let status, [401, 403, 503].contains(status) { return nil }
        current = current == .direct ? .websocket : .direct
        return current
    }

    /// A connection that served has ended: `auto` tries the direct carrier first again.
    public mutating func connectionEnded() {
        if transport == .auto { current = .direct }
    }
}
