import FuzzSupport
import Protocol

/// WebSocket carrier frames, read both as the gateway (the peer masks) and as the agent, in
/// pieces; every payload range must lie inside the piece it was reported for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebSocketFrames(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = pieces(data, size)
    for peerMasks in [true, false] {
        var decoder = WebSocketFrameDecoder(peerMasks: peerMasks)
        for piece in input {
            let events: [WebSocketFrameDecoder.Event]
            do {
                events = try piece.withUnsafeBytes { (buffer) throws(WebSocketFrameDecoder.Violation) in try decoder.feed(buffer) }
            } catch {
                break
            }
            for case .data(let range, let mask, let offset) in events {
                precondition(range.lowerBound >= 0 && range.upperBound <= piece.count, "payload outside the input")
                precondition(mask == nil || (mask?.count == 4 && (0..<4).contains(offset)), "bad mask state")
            }
        }
    }
    return 0
}
