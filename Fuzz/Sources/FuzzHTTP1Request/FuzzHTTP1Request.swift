import FuzzSupport
import NIOCore
import Protocol

/// Public HTTP/1.1 input through the gateway's request reader, driven the way
/// HTTPServerHandler drives it: heads judged by PublicRequest, bodies expected by their
/// framing, upgrades passed through, pipelined requests taken one after another.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP1Request(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var reader = HTTP1RequestReader(maxHeaderSize: 1024, maxBodySize: 4096)
    for piece in pieces(data, size) {
        var buffer = ByteBuffer(bytes: piece)
        reader.append(&buffer)
        _ = reader.holdsBackInput(streamOpen: true)
        // Each event is taken once; the bound only guards the harness against a reader that
        // hands out events forever, which would itself be the bug.
        for _ in 0..<10_000 {
            guard let event = reader.next(streamOpen: true) else {
                guard reader.requestRead else { break }
                reader.nextRequest()
                continue
            }
            switch event {
            case .headStarted, .bodyData, .passThrough:
                continue
            case .head(let head):
                switch PublicRequest.parse(head) {
                case .success(let request) where request.upgrade != nil:
                    reader.passThrough()
                case .success(let request):
                    reader.expectBody(request.framing)
                case .failure:
                    reader.stop()
                }
            case .bodyEnd:
                continue
            case .refused:
                if case .some = reader.next(streamOpen: true) { preconditionFailure("an event after a refusal") }
            }
        }
        precondition(reader.bufferedBytes <= size, "the reader holds more than it was given")
    }
    return 0
}
