/// How one HTTP/1.1 message body is delimited, on either side of the gateway.
public enum BodyFraming: Equatable, Sendable {
    case none
    case contentLength(Int64)
    case chunked
    /// Responses only: the body runs until the connection closes.
    case untilClose

    public init(_ request: RequestFraming) {
        switch request {
        case .none: self = .none
        case .contentLength(let n): self = .contentLength(n)
        case .chunked: self = .chunked
        }
    }

    /// RFC 9112 §6.3 for a response to `method`: no body for HEAD, 1xx, 204 and 304; then
    /// chunked, then Content-Length, else until close. A Content-Length that is not one
    /// number is refused (it could desynchronise the upstream connection).
    public static func ofResponse(_ head: HTTPHead, status: Int, requestMethod: String) -> Result<BodyFraming, Refusal> {
        if requestMethod == "HEAD" || (100..<200).contains(status) || status == 204 || status == 304 {
            return .success(.none)
        }
        let codings = head.tokens("Transfer-Encoding")
        if !codings.isEmpty {
            return .success(codings.last == "chunked" ? .chunked : .untilClose)
        }
        let lengths = head.values("Content-Length").flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .map { String($0).strippingSpaces() }
        guard let first = lengths.first else { return .success(.untilClose) }
        guard let n = RequestFraming.contentLength(first), lengths.allSatisfy({ $0 == first }) else {
            return .failure(Refusal(reason: "invalid Content-Length in the upstream response"))
        }
        return .success(n == 0 ? .none : .contentLength(n))
    }

    public struct Refusal: Error, Equatable, Sendable {
        public let reason: String
    }
}

/// Incremental body decoder for any `BodyFraming`: reports where body bytes lie in each
/// input (so they can be passed on as slices), and where the body ends.
public struct BodyDecoder: Sendable {
    public typealias Event = ChunkedDecoder.Event

    private enum State: Sendable {
        case length(remaining: Int64)
        case chunked(ChunkedDecoder)
        case untilClose
        case done
    }

    private var state: State
    /// Body bytes seen so far (payload only, not chunk framing).
    public private(set) var bodyBytes: Int64 = 0

    public init(_ framing: BodyFraming) {
        switch framing {
        case .none: state = .done
        case .contentLength(let n): state = n == 0 ? .done : .length(remaining: n)
        case .chunked: state = .chunked(ChunkedDecoder())
        case .untilClose: state = .untilClose
        }
    }

    public var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// Decodes what it can of `input`; bytes from `consumed` on belong to the next message.
    public mutating func feed<C: RandomAccessCollection<UInt8>>(_ input: C) throws(ChunkedDecoder.Malformed)
        -> (events: [Event], consumed: Int) where C.Index == Int {
        switch state {
        case .done:
            return ([], input.startIndex)
        case .untilClose:
            guard !input.isEmpty else { return ([], input.startIndex) }
            bodyBytes += Int64(input.count)
            return ([.data(input.startIndex..<input.endIndex)], input.endIndex)
        case .length(let remaining):
            let take = Int(min(remaining, Int64(input.count)))
            guard take > 0 else { return ([], input.startIndex) }
            bodyBytes += Int64(take)
            let end = input.startIndex + take
            var events: [Event] = [.data(input.startIndex..<end)]
            if Int64(take) == remaining {
                state = .done
                events.append(.end(trailers: []))
            } else {
                state = .length(remaining: remaining - Int64(take))
            }
            return (events, end)
        case .chunked(var decoder):
            let result = try decoder.feed(input)
            for case .data(let r) in result.events { bodyBytes += Int64(r.count) }
            state = decoder.isComplete ? .done : .chunked(decoder)
            return result
        }
    }

    /// The connection closed: the end of an until-close body, a truncated one otherwise.
    public mutating func endOfInput() -> Bool {
        switch state {
        case .untilClose:
            state = .done
            return true
        case .done:
            return true
        default:
            return false
        }
    }
}
