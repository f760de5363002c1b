/// The path a request is routed on, and the path its upstream receives: one normal form, so
/// a route's `path_prefix` is a boundary the upstream cannot be talked out of
/// (`/api/../admin`, `/api/%2e%2e/admin` and the like never reach `/api`'s upstream as
/// `/admin`).
///
/// The normal form of an origin-form target `path[?query]`:
/// - percent-escapes of unreserved characters (`ALPHA DIGIT - . _ ~`) decoded, every other
///   escape kept with upper-case hex (`%c3%a9` → `%C3%A9`); decoding happens once, so
///   `%252e` stays `%252e` (the text `%2e`, not a dot);
/// - bytes outside ASCII percent-encoded;
/// - dot segments removed (RFC 3986 §5.2.4), after the decoding, so `%2e%2e` is `..`;
/// - the query passed on unchanged.
///
/// Refused (400), because an upstream could read them as another path than the router did:
/// `%2F` (an encoded separator), `\` and `%5C` (a separator on Windows servers and in some
/// frameworks), `..` above the root, a dot segment with parameters (`..;`, which Tomcat
/// reads as `..`), control bytes, spaces and NUL raw or encoded, malformed escapes, a
/// fragment, and a path that does not start with `/`.
public enum PathNormalizer {
    public struct Refusal: Error, Equatable, Sendable {
        public let reason: String
    }

    /// `target` is the request target of an origin-form request, or the path and query of
    /// an absolute-form one. `*` (OPTIONS) is the caller's business.
    public static func normalize(_ target: String) -> Result<String, Refusal> {
        let bytes = Array(target.utf8)
        let queryStart = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.endIndex
        let query = bytes[queryStart...]
        if let bad = query.first(where: { isControlOrSpace($0) || $0 == UInt8(ascii: "#") }) {
            return .failure(Refusal(reason: describe(bad, in: "query")))
        }
        let path: [UInt8]
        switch decode(bytes[..<queryStart]) {
        case .success(let p): path = p
        case .failure(let refusal): return .failure(refusal)
        }
        switch removeDotSegments(path) {
        case .success(var normal):
            normal.append(contentsOf: query)
            return .success(String(decoding: normal, as: UTF8.self))
        case .failure(let refusal):
            return .failure(refusal)
        }
    }

    /// Percent-decodes unreserved characters and checks every byte of the path.
    static func decode(_ raw: ArraySlice<UInt8>) -> Result<[UInt8], Refusal> {
        func no(_ reason: String) -> Result<[UInt8], Refusal> { .failure(Refusal(reason: reason)) }
        guard raw.first == UInt8(ascii: "/") else { return no("the request path does not start with /") }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = raw.startIndex
        while i < raw.endIndex {
            let b = raw[i]
            i += 1
            if b == UInt8(ascii: "%") {
                guard i + 2 <= raw.endIndex, let high = hexValue(raw[i]), let low = hexValue(raw[i + 1])
                else { return no("malformed percent-encoding in the request path") }
                i += 2
                let decoded = high << 4 | low
                if decoded == UInt8(ascii: "/") { return no("encoded / (%2F) in the request path") }
                if decoded == UInt8(ascii: "\\") { return no("encoded \\ (%5C) in the request path") }
                if isControl(decoded) { return no("encoded control byte %\(hex(decoded)) in the request path") }
                if isUnreserved(decoded) {
                    out.append(decoded)
                } else {
                    out.append(UInt8(ascii: "%"))
                    out.append(contentsOf: hex(decoded).utf8)
                }
            } else if b >= 0x80 {
                out.append(UInt8(ascii: "%"))
                out.append(contentsOf: hex(b).utf8)
            } else if isControlOrSpace(b) || b == UInt8(ascii: "#") || b == UInt8(ascii: "\\") {
                return no(describe(b, in: "path"))
            } else {
                out.append(b)
            }
        }
        return .success(out)
    }

    /// RFC 3986 §5.2.4 on a path that starts with `/`, except that `..` above the root is
    /// refused rather than dropped: no client has a reason to send it.
    static func removeDotSegments(_ path: [UInt8]) -> Result<[UInt8], Refusal> {
        let segments = path.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        var kept: [ArraySlice<UInt8>] = []
        kept.reserveCapacity(segments.count)
        var trailingSlash = false
        for (index, segment) in segments.enumerated() {
            let isLast = index == segments.count - 1
            let name = segment.prefix { $0 != UInt8(ascii: ";") }
            let isDot = name.elementsEqual(".".utf8), isDotDot = name.elementsEqual("..".utf8)
            if (isDot || isDotDot) && name.count != segment.count {
                return .failure(Refusal(reason: "a dot segment with parameters in the request path"))
            }
            if isDot {
                trailingSlash = isLast
            } else if isDotDot {
                guard !kept.isEmpty else { return .failure(Refusal(reason: "the request path climbs above the root")) }
                kept.removeLast()
                trailingSlash = isLast
            } else {
                kept.append(segment)
                trailingSlash = false
            }
        }
        var out: [UInt8] = [UInt8(ascii: "/")]
        out.reserveCapacity(path.count)
        for (index, segment) in kept.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "/")) }
            out.append(contentsOf: segment)
        }
        if trailingSlash && !kept.isEmpty { out.append(UInt8(ascii: "/")) }
        return .success(out)
    }

    // MARK: bytes

    /// RFC 3986 unreserved: the characters whose escapes mean the same as the characters.
    static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static func isControl(_ b: UInt8) -> Bool { b < 0x20 || b == 0x7F }

    static func isControlOrSpace(_ b: UInt8) -> Bool { b <= 0x20 || b == 0x7F }

    private static func hexValue(_ b: UInt8) -> UInt8? { Hex.value(b) }

    private static func hex(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return String(decoding: [digits[Int(b >> 4)], digits[Int(b & 15)]], as: UTF8.self)
    }

    private static func describe(_ b: UInt8, in part: String) -> String {
        switch b {
        case UInt8(ascii: "#"): return "a fragment (#) in the request target"
        case UInt8(ascii: "\\"): return "\\ in the request path"
        case 0x20: return "a space in the request \(part)"
        default: return "control byte 0x\(hex(b)) in the request \(part)"
        }
    }
}
