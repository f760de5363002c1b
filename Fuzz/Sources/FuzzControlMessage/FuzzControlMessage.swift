import FuzzSupport
import Protocol

/// The tunnel's control stream (DESIGN §2.2): newline-delimited JSON from a half-trusted
/// agent (register) or from the gateway (registered, draining), framed in pieces; every
/// message decoded must encode and decode to itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControlMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var framer = LineFramer(limit: 4096)
    for piece in pieces(data, size) {
        guard let lines = try? framer.feed(piece) else { return 0 }
        for line in lines {
            _ = try? JSON.parse(line).serialized()
            guard let message = try? ControlMessage.decode(line) else { continue }
            let again = try? ControlMessage.decode(message.encoded())
            precondition(again == message, "a control message does not survive encoding: \(message)")
        }
    }
    return 0
}
