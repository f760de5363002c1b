/// How the body of an HTTP/1.1 request is delimited (RFC 9112 §6), decided from its head
/// with the checks that keep two parsers from disagreeing about where a request ends
/// (request smuggling): such requests are refused, never guessed at.
public enum RequestFraming: Equatable, Sendable {
    case none
    case contentLength(Int64)
    case chunked

    public struct Refusal: Error, Equatable, Sendable {
        /// 400, or 501 for a transfer coding fastgw does not decode.
        public let status: Int
        public let reason: String
    }

    /// `version` is the request line's, e.g. "HTTP/1.1".
    public static func of(_ head: HTTPHead, version: String) -> Result<RequestFraming, Refusal> {
        let codings = head.tokens("Transfer-Encoding")
        let lengths = head.values("Content-Length")
        if !codings.isEmpty || head["Transfer-Encoding"] != nil {
            if !lengths.isEmpty {
                return .failure(Refusal(status: 400, reason: "both Transfer-Encoding and Content-Length"))
            }
            if version == "HTTP/1.0" {
                return .failure(Refusal(status: 400, reason: "Transfer-Encoding in an HTTP/1.0 request"))
            }
            guard codings == ["chunked"] else {
                if codings.last != "chunked" {
                    return .failure(Refusal(status: 400, reason: "Transfer-Encoding does not end with chunked"))
                }
                return .failure(Refusal(status: 501, reason: "transfer coding \"\(codings.joined(separator: ", "))\" is not supported"))
            }
            return .success(.chunked)
        }
        guard let first = lengths.first else { return .success(.none) }
        // RFC 9110 §8.6 lets a recipient take `5, 5` (or the field twice) as 5, but then the
        // agent would have to forward one value; like nginx, the gateway refuses instead, so
        // both ends read one field with one number and nothing else.
        guard lengths.count == 1, !first.contains(",") else {
            return .failure(Refusal(status: 400, reason: "more than one Content-Length value"))
        }
        guard let n = contentLength(first) else {
            return .failure(Refusal(status: 400, reason: "invalid Content-Length"))
        }
        return .success(n == 0 ? .none : .contentLength(n))
    }

    /// 1*DIGIT, no sign, no spaces inside, at most 18 digits (fits Int64).
    static func contentLength(_ text: String) -> Int64? {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(text)
    }
}
