/// The request a client made, as the forward-auth service is told about it.
public struct ForwardAuthOriginal: Equatable, Sendable {
    public var method: String
    /// The request target in `PathNormalizer`'s form (path and query): what routing matched
    /// and the upstream receives, so no spelling of a path (`/public/../admin`) is judged by
    /// the auth service as one path and served as another.
    public var uri: String
    public var host: String
    /// `http` or `https`: how the client reached the gateway.
    public var scheme: String
    /// The real client (after PROXY headers and trusted proxies).
    public var client: IPAddress
    /// The client's own header fields, of which only `passedClientFields` are sent.
    public var fields: [HeaderField]

    public init(method: String, uri: String, host: String, scheme: String, client: IPAddress, fields: [HeaderField]) {
        self.method = method
        self.uri = uri
        self.host = host
        self.scheme = scheme
        self.client = client
        self.fields = fields
    }
}

/// One subrequest to a forward-auth service over HTTP/1.1 and the reading of its answer,
/// without I/O: `request` is the bytes to send, `feed`/`endOfInput` take what comes back.
/// One connection per subrequest (`Connection: close`), so the answer ends with the
/// connection and nothing has to be drained for reuse.
public struct ForwardAuthExchange: Sendable {
    /// Client fields the service sees: credentials and sessions (Cookie, Authorization) and
    /// content negotiation (Accept, so it can choose a redirect or a 401). Nothing else of the
    /// client's reaches it; the original request line travels in `X-Forwarded-*`.
    public static let passedClientFields = ["Cookie", "Authorization", "Accept"]
    public static let maxHeadBytes = 16 * 1024
    public static let maxBodyBytes = 64 * 1024

    public enum Progress: Equatable, Sendable {
        case needMore
        case answer(ForwardAuthAnswer)
    }

    private enum State: Sendable {
        case head(HTTPHeadParser)
        case body(status: Int, head: HTTPHead, decoder: BodyDecoder, body: [UInt8])
        case done
    }

    public let copy: [String]
    private var state = State.head(HTTPHeadParser(limit: ForwardAuthExchange.maxHeadBytes))

    /// `copy`: the response fields an allowing answer hands to the upstream request.
    public init(copy: [String]) {
        self.copy = copy
    }

    /// The subrequest: `GET` to the target path with the original request in `X-Forwarded-*`.
    /// GET with no body whatever the client's method (as Traefik does): the service decides
    /// on the fields, and the client's body is never held back waiting for it. Nil when a
    /// value cannot be sent as it is (CR, LF or NUL): leaving out `X-Forwarded-Uri` or a
    /// credential could make a service allow by default, so the caller fails closed.
    public static func request(to target: ForwardAuthTarget, for original: ForwardAuthOriginal) -> [UInt8]? {
        var fields: [(name: String, value: String)] = [
            ("Host", target.authority),
            ("X-Forwarded-Method", original.method),
            ("X-Forwarded-Proto", original.scheme),
            ("X-Forwarded-Host", original.host),
            ("X-Forwarded-Uri", original.uri),
            ("X-Forwarded-For", original.client.description),
        ]
        // HTTP/2 clients split Cookie into one field per pair (RFC 9113 §8.2.3); HTTP/1.1 wants one.
        var cookies: [String] = []
        for field in original.fields where passedClientFields.contains(where: { $0.equalsIgnoringASCIICase(field.name) }) {
            if field.name.equalsIgnoringASCIICase("Cookie") { cookies.append(field.value) } else { fields.append((field.name, field.value)) }
        }
        if !cookies.isEmpty { fields.append(("Cookie", cookies.joined(separator: "; "))) }
        fields.append(("Connection", "close"))
        // Values came through the gateway's own head parsers, which refuse CR and LF; a stray
        // one here would split the subrequest.
        if fields.contains(where: { $0.value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) }) { return nil }
        return HTTPHead(startLine: ["GET", target.path, "HTTP/1.1"], fields: fields).serialized()
    }

    public mutating func feed(_ bytes: some Collection<UInt8>) -> Progress {
        switch state {
        case .done:
            return .needMore
        case .head(var parser):
            switch parser.feed(bytes) {
            case .needMore:
                state = .head(parser)
                return .needMore
            case .invalid(let why):
                return finish(.fail(status: 502, reason: "forward auth answer: \(why)"))
            case .complete(let head, let rest):
                guard let status = UpstreamMessage.status(of: head), status >= 200 else {
                    return finish(.fail(status: 502, reason: "forward auth answer has no usable status line"))
                }
                guard ForwardAuthAnswer.needsBody(status) else {
                    return finish(ForwardAuthAnswer.decide(status: status, head: head, body: [], copy: copy))
                }
                switch BodyFraming.ofResponse(head, status: status, requestMethod: "GET") {
                case .failure(let refusal):
                    return finish(.fail(status: 502, reason: "forward auth answer: \(refusal.reason)"))
                case .success(let framing):
                    if case .contentLength(let n) = framing, n > Self.maxBodyBytes {
                        return finish(.fail(status: 502, reason: "forward auth answer body over \(Self.maxBodyBytes) bytes"))
                    }
                    state = .body(status: status, head: head, decoder: BodyDecoder(framing), body: [])
                    return feedBody(rest)
                }
            }
        case .body:
            return feedBody(Array(bytes))
        }
    }

    /// The connection closed: an answer whose body runs until close is complete now, any
    /// other unfinished answer is broken.
    public mutating func endOfInput() -> ForwardAuthAnswer {
        switch state {
        case .done:
            return .fail(status: 502, reason: "forward auth answer already complete")
        case .head:
            state = .done
            return .fail(status: 502, reason: "forward auth closed the connection before answering")
        case .body(let status, let head, var decoder, let body):
            state = .done
            guard decoder.endOfInput() else {
                return .fail(status: 502, reason: "forward auth closed the connection in the middle of its answer")
            }
            return ForwardAuthAnswer.decide(status: status, head: head, body: body, copy: copy)
        }
    }

    private mutating func feedBody(_ bytes: [UInt8]) -> Progress {
        guard case .body(let status, let head, var decoder, var body) = state else { return .needMore }
        let events: [BodyDecoder.Event]
        do {
            events = try decoder.feed(bytes).events
        } catch {
            return finish(.fail(status: 502, reason: "forward auth answer has a malformed body"))
        }
        for event in events {
            if case .data(let range) = event {
                guard body.count + range.count <= Self.maxBodyBytes else {
                    return finish(.fail(status: 502, reason: "forward auth answer body over \(Self.maxBodyBytes) bytes"))
                }
                body.append(contentsOf: bytes[range])
            }
        }
        if decoder.isComplete {
            return finish(ForwardAuthAnswer.decide(status: status, head: head, body: body, copy: copy))
        }
        state = .body(status: status, head: head, decoder: decoder, body: body)
        return .needMore
    }

    private mutating func finish(_ answer: ForwardAuthAnswer) -> Progress {
        state = .done
        return .answer(answer)
    }
}
