/// An RFC 7807 problem document as ACME servers send them (RFC 8555 §6.7), reduced to what an
/// operator needs to read in a log line.
public struct AcmeProblem: Equatable, Sendable, CustomStringConvertible {
    public let type: String
    public let detail: String
    /// Per-identifier problems of a compound error (`subproblems`), already flattened to text.
    public let subproblems: [String]

    public init(type: String, detail: String, subproblems: [String] = []) {
        self.type = type
        self.detail = detail
        self.subproblems = subproblems
    }

    /// Nil when the body is not a JSON object with at least a type or a detail.
    public init?(json: JSON) {
        let type = json["type"]?.string
        let detail = json["detail"]?.string
        guard type != nil || detail != nil else { return nil }
        self.type = type ?? "about:blank"
        self.detail = detail ?? ""
        subproblems = (json["subproblems"]?.array ?? []).compactMap { sub in
            guard let p = AcmeProblem(json: sub) else { return nil }
            let who = sub["identifier"]?["value"]?.string.map { "\($0): " } ?? ""
            return who + p.description
        }
    }

    public init?(body: [UInt8]) {
        guard let json = try? JSON.parse(body) else { return nil }
        self.init(json: json)
    }

    /// The ACME error name without its URN prefix, e.g. "badNonce".
    public var shortType: String {
        let prefix = "urn:ietf:params:acme:error:"
        return type.hasPrefix(prefix) ? String(type.dropFirst(prefix.count)) : type
    }

    /// The most of a server's words that reach a log line or `last_error`: enough to act on,
    /// and a hostile server cannot fill the journal.
    public static let maximumTextBytes = 512

    public var description: String {
        var text = detail.isEmpty ? shortType : "\(shortType): \(detail)"
        if !subproblems.isEmpty { text += " (" + subproblems.joined(separator: "; ") + ")" }
        return Self.cut(text)
    }

    /// `text` cut to `maximumTextBytes` UTF-8 bytes at a character boundary, marked with "…".
    public static func cut(_ text: String) -> String {
        guard text.utf8.count > maximumTextBytes else { return text }
        var out = ""
        var bytes = 0
        for c in text {
            let n = String(c).utf8.count
            if bytes + n > maximumTextBytes - 3 { break }
            out.append(c)
            bytes += n
        }
        return out + "…"
    }
}
