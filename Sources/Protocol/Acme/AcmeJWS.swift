/// The JOSE pieces of ACME (RFC 8555 §6.2, RFC 7515/7517/7638) for an ES256 account key:
/// pure, so the signing itself is a closure the caller supplies (OpenSSL in the daemon).
public struct AcmeJWK: Equatable, Sendable {
    /// The P-256 public point, 32 bytes each.
    public let x: [UInt8]
    public let y: [UInt8]

    public init(x: [UInt8], y: [UInt8]) {
        self.x = x
        self.y = y
    }

    public var json: JSON {
        .object(["crv": .string("P-256"), "kty": .string("EC"), "x": .string(Base64URL.encode(x)), "y": .string(Base64URL.encode(y))])
    }

    /// RFC 7638: SHA-256 of the required members in lexicographic order without whitespace,
    /// which is exactly what `JSON.serialized()` produces.
    public var thumbprint: String { Self.thumbprint(of: json) }

    public static func thumbprint(of jwk: JSON) -> String {
        Base64URL.encode(SHA256.hash(Array(jwk.serialized().utf8)))
    }

    /// RFC 8555 §8.1: token "." thumbprint.
    public func keyAuthorization(token: String) -> String { token + "." + thumbprint }
}

public enum AcmeJWS {
    /// Who signs: a new account shows its key, a known one its account URL.
    public enum Signer: Sendable {
        case jwk(AcmeJWK)
        case kid(String)
    }

    public struct SigningFailed: Error, Sendable {
        public let reason: String
        public init(_ reason: String) { self.reason = reason }
    }

    /// The flattened JSON serialisation of a JWS over `payload` (nil: POST-as-GET, the empty
    /// payload). `sign` returns the raw 64-byte r||s signature of its input.
    public static func flattened(
        payload: JSON?, url: String, nonce: String, signer: Signer,
        sign: ([UInt8]) throws(SigningFailed) -> [UInt8]
    ) throws(SigningFailed) -> JSON {
        var header: [String: JSON] = ["alg": .string("ES256"), "nonce": .string(nonce), "url": .string(url)]
        switch signer {
        case .jwk(let jwk): header["jwk"] = jwk.json
        case .kid(let kid): header["kid"] = .string(kid)
        }
        let protected = Base64URL.encode(JSON.object(header).serialized())
        let encodedPayload = payload.map { Base64URL.encode($0.serialized()) } ?? ""
        let signature = try sign(Array((protected + "." + encodedPayload).utf8))
        guard signature.count == 64 else { throw SigningFailed("an ES256 signature is 64 bytes, not \(signature.count)") }
        return .object([
            "protected": .string(protected), "payload": .string(encodedPayload),
            "signature": .string(Base64URL.encode(signature)),
        ])
    }

    /// JWS wants ES256 signatures as r||s, 32 bytes each (RFC 7518 §3.4); OpenSSL makes the
    /// DER `SEQUENCE { INTEGER r, INTEGER s }` of X9.62. Nil when the DER is not that shape.
    public static func rawSignature(fromDER der: [UInt8]) -> [UInt8]? {
        var reader = DERReader(der)
        guard let sequence = reader.read(tag: 0x30), reader.atEnd else { return nil }
        var inner = DERReader(sequence)
        guard let r = inner.read(tag: 0x02), let s = inner.read(tag: 0x02), inner.atEnd,
              let rr = fixed32(r), let ss = fixed32(s) else { return nil }
        return rr + ss
    }

    /// A DER INTEGER's magnitude left-padded to 32 bytes (a leading 0x00 sign byte dropped).
    private static func fixed32(_ integer: [UInt8]) -> [UInt8]? {
        var bytes = integer[...]
        while bytes.count > 1, bytes.first == 0 { bytes = bytes.dropFirst() }
        guard bytes.count <= 32 else { return nil }
        return [UInt8](repeating: 0, count: 32 - bytes.count) + bytes
    }
}

/// Reads DER tag-length-value items (definite lengths only), for the few structures ACME
/// needs to look inside.
public struct DERReader {
    private let bytes: [UInt8]
    private var offset = 0

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public var atEnd: Bool { offset == bytes.count }

    /// The contents of the next item if it has `tag`; nil (and nothing consumed) otherwise.
    public mutating func read(tag: UInt8) -> [UInt8]? {
        guard offset + 2 <= bytes.count, bytes[offset] == tag else { return nil }
        var at = offset + 1
        var length = Int(bytes[at])
        at += 1
        if length & 0x80 != 0 {
            let count = length & 0x7f
            guard count >= 1, count <= 3, at + count <= bytes.count else { return nil }
            length = 0
            for _ in 0..<count {
                length = length << 8 | Int(bytes[at])
                at += 1
            }
        }
        guard length <= bytes.count - at else { return nil }
        offset = at + length
        return Array(bytes[at..<at + length])
    }
}
