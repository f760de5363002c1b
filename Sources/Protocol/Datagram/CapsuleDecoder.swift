/// Reads capsules from a `connect-udp` stream's DATA, in whatever pieces they arrive, and
/// hands out the UDP payloads of DATAGRAM capsules with context id 0.
///
/// Bounded against a hostile peer: a DATAGRAM capsule longer than
/// `Capsule.maxDatagramValue` is an error before any of it is buffered; capsules of other
/// types are skipped as they stream past, whatever their length, without being buffered
/// (RFC 9297 §3.2: unknown types are ignored); datagrams with another context id are
/// dropped (RFC 9298 §5). So at most one partial DATAGRAM capsule is held, in a buffer
/// sized to that capsule once its head is known: `maxPartial` (65,533) bytes at most per
/// stream. What a process holds in all is the caller's to bound (`DatagramStreamLink`).
public struct CapsuleDecoder: Sendable {
    public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// What one `feed` did besides the datagrams it handed out.
    public struct Tally: Equatable, Sendable {
        /// Capsules of types other than DATAGRAM, skipped.
        public var skippedCapsules = 0
        /// DATAGRAM capsules with a context id other than 0, dropped.
        public var unknownContexts = 0
        public init() {}
    }

    /// Bytes of a partial capsule (its head, or a DATAGRAM capsule's head and value so far).
    private var partial: [UInt8] = []
    /// Bytes of a skipped capsule still to come.
    private var skipping: UInt64 = 0
    private var failed: Failure?

    public init() {}

    /// The most a partial capsule can take: the largest DATAGRAM capsule with its head.
    public static let maxPartial = Capsule.maxDatagramHeader - 1 + Capsule.maxDatagramValue

    /// Bytes held for a capsule not complete yet.
    public var buffered: Int { partial.count }

    /// Bytes of memory the partial capsule's buffer takes (at most `maxPartial`, rounded up
    /// by the allocator at most to its size class).
    public var reserved: Int { partial.capacity }

    /// Partial-capsule memory every stream may hold without asking a shared budget: a
    /// datagram of a usual path MTU split across DATA frames fits in it, so such flows never
    /// depend on what other streams hold.
    public static let unchargedPartial = 2048

    /// What the partial capsule takes beyond `unchargedPartial`: the part a process-wide
    /// budget is to be charged for.
    public var chargeable: Int { max(reserved - Self.unchargedPartial, 0) }

    /// Whether the stream ended on a capsule boundary (a truncated capsule is an error).
    public var atBoundary: Bool { partial.isEmpty && skipping == 0 }

    /// Feeds the next bytes; `datagram` gets each complete payload (valid only during the
    /// call). After an error the decoder refuses everything: the stream is to be reset.
    public mutating func feed(
        _ bytes: UnsafeRawBufferPointer, tally: inout Tally, _ datagram: (UnsafeRawBufferPointer) -> Void
    ) throws(Failure) {
        if let failed { throw failed }
        do {
            try run(bytes, tally: &tally, datagram)
        } catch {
            failed = error
            throw error
        }
    }

    private mutating func run(
        _ bytes: UnsafeRawBufferPointer, tally: inout Tally, _ datagram: (UnsafeRawBufferPointer) -> Void
    ) throws(Failure) {
        var input = bytes[...]
        while !input.isEmpty {
            if skipping > 0 {
                let n = Int(min(skipping, UInt64(input.count)))
                input = input.dropFirst(n)
                skipping -= UInt64(n)
                continue
            }
            if partial.isEmpty {
                // The common case: whole capsules straight from the input, no copy.
                let consumed = try Self.parse(UnsafeRawBufferPointer(rebasing: input), skipping: &skipping, tally: &tally, datagram)
                if consumed == 0 {
                    hold(input)
                    return
                }
                input = input.dropFirst(consumed)
                continue
            }
            // Finish the held capsule, taking only the bytes it still needs.
            let take = min(max(Self.missing(partial), 1), input.count)
            hold(input.prefix(take))
            input = input.dropFirst(take)
            var skip = skipping
            let result = partial.withUnsafeBytes { raw in
                Result { () throws(Failure) -> Int in try Self.parse(raw, skipping: &skip, tally: &tally, datagram) }
            }
            skipping = skip
            // The held bytes are one capsule: parsed whole (or its head, when skipped) or not at all.
            if try result.get() > 0 { partial.removeAll(keepingCapacity: false) }
        }
    }

    /// Appends to the partial capsule, growing its buffer to exactly what the capsule needs
    /// (never the doubling an array's growth would give: a 64 KiB capsule must not hold 128).
    private mutating func hold(_ bytes: Slice<UnsafeRawBufferPointer>) {
        partial.append(contentsOf: bytes)
        // Once the head is known, one reallocation to the capsule's whole size; the bytes
        // still to come fit (`run` takes no more than `missing`).
        // A head announcing more than the largest DATAGRAM capsule is refused by `parse` next.
        let whole = min(partial.count + Self.missing(partial), Self.maxPartial)
        if partial.capacity < whole { partial.reserveCapacity(whole) }
    }

    /// How many more bytes the held partial capsule needs before it can be parsed further:
    /// up to the end of its head, or of its value once the head is known.
    private static func missing(_ partial: [UInt8]) -> Int {
        partial.withUnsafeBytes { raw -> Int in
            guard let type = QUICVarint.read(raw, at: 0) else {
                return (1 << Int(raw[0] >> 6)) - raw.count + 1
            }
            guard let length = QUICVarint.read(raw, at: type.length) else {
                let at = type.length
                return at < raw.count ? (1 << Int(raw[at] >> 6)) - (raw.count - at) : 1
            }
            let head = type.length + length.length
            // A skipped capsule needs only its head; its value streams past.
            guard type.value == Capsule.datagramType else { return max(head - raw.count, 0) }
            return head + Int(length.value) - raw.count
        }
    }

    /// Parses whole capsules from the start of `bytes`; returns the bytes consumed. Stops at
    /// a capsule it cannot finish (0 if the first one): a skipped capsule is consumed once
    /// its head is read, the rest of its value set in `skipping`.
    private static func parse(
        _ bytes: UnsafeRawBufferPointer, skipping: inout UInt64, tally: inout Tally,
        _ datagram: (UnsafeRawBufferPointer) -> Void
    ) throws(Failure) -> Int {
        var at = 0
        while at < bytes.count {
            guard let type = QUICVarint.read(bytes, at: at),
                  let length = QUICVarint.read(bytes, at: at + type.length) else { return at }
            let head = type.length + length.length
            if type.value != Capsule.datagramType {
                tally.skippedCapsules += 1
                let available = UInt64(bytes.count - at - head)
                if length.value > available {
                    skipping = length.value - available
                    return bytes.count
                }
                at += head + Int(length.value)
                continue
            }
            guard length.value <= UInt64(Capsule.maxDatagramValue) else {
                throw Failure(description: "DATAGRAM capsule of \(length.value) bytes (at most \(Capsule.maxDatagramValue))")
            }
            let end = at + head + Int(length.value)
            guard end <= bytes.count else { return at }
            let value = UnsafeRawBufferPointer(rebasing: bytes[(at + head)..<end])
            guard let context = QUICVarint.read(value, at: 0) else {
                throw Failure(description: "DATAGRAM capsule without a context id")
            }
            if context.value == 0 {
                datagram(UnsafeRawBufferPointer(rebasing: value[context.length...]))
            } else {
                tally.unknownContexts += 1
            }
            at = end
        }
        return at
    }
}
