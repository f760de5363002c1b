import FuzzSupport
import Protocol

/// A connect-udp stream's DATA as an agent or gateway peer sends it, in the pieces frames
/// deliver: the capsule decoder hands out only payloads within the stated maximum, never
/// holds more than one partial DATAGRAM capsule, and once failed stays failed. The same bytes
/// decoded whole must give the same datagrams.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCapsules(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let whole = decode(pieces(data, size))
    let once = decode(size > 0 ? [Array(UnsafeBufferPointer(start: data + 1, count: size - 1))] : [])
    precondition(whole.datagrams == once.datagrams && whole.failed == once.failed, "pieces changed the outcome")
    return 0
}

private func decode(_ pieces: [[UInt8]]) -> (datagrams: [[UInt8]], failed: Bool) {
    var decoder = CapsuleDecoder()
    var tally = CapsuleDecoder.Tally()
    var out: [[UInt8]] = []
    var failed = false
    for piece in pieces {
        piece.withUnsafeBytes { raw in
            do {
                try decoder.feed(raw, tally: &tally) { payload in
                    precondition(payload.count <= Capsule.maxDatagramPayload, "datagram over the maximum")
                    out.append(Array(payload))
                }
            } catch {
                failed = true
            }
        }
        precondition(decoder.buffered <= Capsule.maxDatagramHeader + Capsule.maxDatagramValue + 8, "held \(decoder.buffered) bytes")
        if failed { break }
    }
    // Re-encoding what came out gives capsules the decoder reads back the same.
    if !failed {
        var again = CapsuleDecoder()
        var t = CapsuleDecoder.Tally()
        var back: [[UInt8]] = []
        let stream = out.flatMap(Capsule.datagram)
        stream.withUnsafeBytes { raw in
            try? again.feed(raw, tally: &t) { back.append(Array($0)) }
        }
        precondition(back == out && again.atBoundary, "round trip")
    }
    return (out, failed)
}
