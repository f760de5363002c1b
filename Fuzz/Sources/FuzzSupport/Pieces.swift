/// Cuts a fuzz input into the pieces a socket might deliver it in. The first byte chooses the
/// sizes, so the fuzzer explores where reads end (inside a header, a size line, a CRLF)
/// along with what the bytes say.
public func pieces(_ data: UnsafePointer<UInt8>, _ size: Int) -> [[UInt8]] {
    guard size > 0 else { return [] }
    let seed = Int(data[0])
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    // 0: all at once; otherwise sizes cycling through 1…seed.
    guard seed > 0 else { return [bytes] }
    var out: [[UInt8]] = []
    var start = 0
    var k = 0
    while start < bytes.count {
        let length = min(1 + (k * 7 + seed) % seed, bytes.count - start)
        out.append(Array(bytes[start..<start + length]))
        start += length
        k += 1
    }
    return out
}

/// The whole input as bytes.
public func bytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
    Array(UnsafeBufferPointer(start: data, count: size))
}
