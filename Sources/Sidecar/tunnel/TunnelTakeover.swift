import NIOCore
import Protocol

extension TunnelConnection {
    /// After a tunnel handshake succeeded on `context`: this connection replaces the handshake
    /// handler, behind the WebSocket carrier when that carrier was agreed (added first, so the
    /// session's first bytes are framed), and gets the bytes that followed the handshake.
    func takeOver(
        from context: ChannelHandlerContext, carrier: TunnelHandshake.Carrier, role: WebSocketCarrier.Role, early: [UInt8]
    ) throws {
        let pipeline = context.pipeline.syncOperations
        switch carrier {
        case .direct:
            try pipeline.addHandler(self, position: .after(context.handler))
        case .websocket:
            let frames = WebSocketCarrier(role: role)
            try pipeline.addHandler(frames, position: .after(context.handler))
            try pipeline.addHandler(self, position: .after(frames))
        }
        if !early.isEmpty { context.fireChannelRead(NIOAny(context.channel.allocator.buffer(bytes: early))) }
        pipeline.removeHandler(context: context, promise: nil)
    }
}
