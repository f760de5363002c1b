/// Header fields that describe one connection rather than the message (RFC 9110 §7.6.1):
/// a proxy removes them, together with every field the Connection header names.
public enum HopByHop {
    public static let names: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Lowercased names of the fields to drop from a message with this head.
    public static func dropped(by head: HTTPHead) -> Set<String> {
        names.union(head.tokens("Connection"))
    }

    public static func isInternal(_ lowercasedName: String) -> Bool {
        lowercasedName.hasPrefix("fastgw-")
    }

    /// Trailers as fastgw passes them on, in either direction and protocol: without
    /// pseudo-header fields, connection fields, `fastgw-*`, the framing and routing fields
    /// a trailer must not carry (RFC 9110 §6.5.1), and the fields naming the client
    /// (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`, `X-Request-Id`): an upstream that merges
    /// trailers into the header section must not find a client's claim there that the
    /// gateway removed from the head.
    public static func forwardedTrailers(_ fields: [HeaderField]) -> [HeaderField] {
        fields.filter { f in
            !f.name.hasPrefix(":") && !names.contains(f.name) && !isInternal(f.name)
                && f.name != "content-length" && f.name != "host" && !ForwardedFields.isClientClaim(f.name)
        }
    }

    /// A chunked body's trailer section as HTTP/2 fields (names lowercased), by the same rule.
    public static func forwardedTrailers(_ lines: [ChunkedDecoder.HeaderLine]) -> [HeaderField] {
        forwardedTrailers(lines.map { HeaderField($0.name.asciiLowercased(), $0.value) })
    }
}

/// Reason phrases for the status lines fastgw writes itself or relays.
public enum ReasonPhrase {
    public static func of(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 417: return "Expectation Failed"
        case 421: return "Misdirected Request"
        case 422: return "Unprocessable Content"
        case 426: return "Upgrade Required"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Status \(status)"
        }
    }
}
