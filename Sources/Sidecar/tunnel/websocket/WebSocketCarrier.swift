import NIOCore
import Protocol

/// The WebSocket carrier (DESIGN §2.1) between TLS and the tunnel's HTTP/2 layer: every write
/// goes out as one binary frame (masked by the agent, the WebSocket client), and the payload
/// of every frame read is handed on as it arrives, so frame boundaries mean nothing. Pings
/// are answered; a close frame or a frame RFC 6455 forbids ends the connection.
final class WebSocketCarrier: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Role {
        /// The agent: masks what it sends.
        case client
        /// The gateway: reads masked frames.
        case server
    }

    private let role: Role
    private var decoder: WebSocketFrameDecoder
    /// A close frame was sent: nothing more is written or handed on.
    private var closeSent = false
    private var random = SystemRandomNumberGenerator()

    init(role: Role) {
        self.role = role
        self.decoder = WebSocketFrameDecoder(peerMasks: role == .server)
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !closeSent else { return }
        let events: [WebSocketFrameDecoder.Event]
        do {
            events = try bytes.withUnsafeReadableBytes { raw throws(WebSocketFrameDecoder.Violation) in try decoder.feed(raw) }
        } catch {
            return fail(context: context, code: error.code, reason: error.reason)
        }
        for event in events {
            switch event {
            case .data(let range, let mask, let offset):
                if let mask { Self.applyMask(&bytes, range: range, mask: mask, offset: offset) }
                context.fireChannelRead(wrapInboundOut(bytes.getSlice(at: bytes.readerIndex + range.lowerBound, length: range.count)!))
            case .ping(let payload):
                writeControl(context: context, opcode: WebSocketFrameHeader.pong, payload: payload)
                context.flush()
            case .pong:
                break
            case .close(let code):
                // Echo the close (RFC 6455 §5.5.1), then end the connection.
                sendClose(context: context, code: code ?? 1000)
                context.close(promise: nil)
                return
            }
        }
    }

    /// XORs the bytes at `range` of the readable bytes with a frame's mask, in place, starting
    /// at byte `offset` of the mask (masking and unmasking are the same operation).
    private static func applyMask(_ bytes: inout ByteBuffer, range: Range<Int>, mask: [UInt8], offset: Int) {
        // The mask repeated to eight bytes, rotated to `offset`, for a word at a time.
        var wide: UInt64 = 0
        withUnsafeMutableBytes(of: &wide) { w in
            for j in 0..<8 { w[j] = mask[(offset + j) % 4] }
        }
        bytes.withUnsafeMutableReadableBytes { raw in
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ wide
                raw.storeBytes(of: word, toByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < range.upperBound {
                raw[i] ^= mask[(offset + i - range.lowerBound) % 4]
                i += 1
            }
        }
    }

    // MARK: outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var payload = unwrapOutboundIn(data)
        guard !closeSent else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        guard payload.readableBytes > 0 else {
            context.write(wrapOutboundOut(payload), promise: promise)
            return
        }
        let mask = role == .client ? nextMask() : nil
        let header = WebSocketFrameHeader.bytes(opcode: WebSocketFrameHeader.binary, length: payload.readableBytes, mask: mask)
        var frame = context.channel.allocator.buffer(capacity: header.count + (mask == nil ? 0 : payload.readableBytes))
        frame.writeBytes(header)
        if let mask {
            // The client masks its own copy of the payload.
            let start = frame.writerIndex
            frame.writeBuffer(&payload)
            Self.applyMask(&frame, range: (start - frame.readerIndex)..<(frame.writerIndex - frame.readerIndex), mask: mask, offset: 0)
            context.write(wrapOutboundOut(frame), promise: promise)
        } else {
            context.write(wrapOutboundOut(frame), promise: nil)
            context.write(wrapOutboundOut(payload), promise: promise)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all, context.channel.isActive { sendClose(context: context, code: 1000) }
        context.close(mode: mode, promise: promise)
    }

    private func nextMask() -> [UInt8] {
        let r = random.next() as UInt32
        return [UInt8(truncatingIfNeeded: r), UInt8(truncatingIfNeeded: r >> 8), UInt8(truncatingIfNeeded: r >> 16), UInt8(truncatingIfNeeded: r >> 24)]
    }

    private func writeControl(context: ChannelHandlerContext, opcode: UInt8, payload: [UInt8]) {
        let mask = role == .client ? nextMask() : nil
        let frame = WebSocketFrameHeader.control(opcode: opcode, payload: payload, mask: mask)
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: frame)), promise: nil)
    }

    private func sendClose(context: ChannelHandlerContext, code: UInt16) {
        guard !closeSent else { return }
        writeControl(context: context, opcode: WebSocketFrameHeader.close, payload: WebSocketFrameHeader.closePayload(code))
        closeSent = true
        context.flush()
    }

    private func fail(context: ChannelHandlerContext, code: UInt16, reason: String) {
        sendClose(context: context, code: code)
        context.fireErrorCaught(WebSocketCarrierError(reason: reason))
        context.close(promise: nil)
    }
}

struct WebSocketCarrierError: Error, CustomStringConvertible {
    let reason: String
    var description: String { "WebSocket carrier: \(reason)" }
}
