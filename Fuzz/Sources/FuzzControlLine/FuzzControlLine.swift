import FuzzSupport
import Protocol

/// Control socket input: each LF-terminated line for both roles, as the server splits it, and
/// the reply parser `fastgwctl` runs on what comes back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControlLine(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = bytes(data, size)
    for line in input.split(separator: 10, omittingEmptySubsequences: false) {
        for role in [ControlRole.gateway, .agent] {
            if case .success(let request?) = ControlRequest.parse(line, role: role) {
                _ = request.command
            }
        }
    }
    var replies = ControlReplyParser()
    do {
        for piece in pieces(data, size) {
            var reply = try replies.feed(piece)
            while let r = reply {
                _ = r.encoded()
                reply = try replies.next()
            }
        }
    } catch {
        return 0
    }
    return 0
}
