import FuzzSupport
import Protocol

/// Chunked request bodies from public clients, in pieces, each handed over as a slice whose
/// indices do not start at zero (as the reader's buffer views do).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChunked(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var decoder = ChunkedDecoder()
    var pending: [UInt8] = []
    for piece in pieces(data, size) {
        pending += piece
        // A prefix the decoder must skip, so ranges are checked against a moved start index.
        let framed = Array(repeating: 0x7e, count: 3) + pending
        let input = framed[3...]
        let result: (events: [ChunkedDecoder.Event], consumed: Int)
        do {
            result = try decoder.feed(input)
        } catch {
            return 0
        }
        precondition(input.indices.contains(result.consumed) || result.consumed == input.endIndex, "consumed outside the input")
        for case .data(let range) in result.events {
            precondition(range.lowerBound >= input.startIndex && range.upperBound <= result.consumed, "data outside the consumed input")
        }
        pending = Array(input[result.consumed...])
        if decoder.isComplete { return 0 }
    }
    return 0
}
