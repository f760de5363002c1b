/// One header field as HTTP/2 carries it (lowercase name; pseudo-headers start with `:`).
public struct HeaderField: Equatable, Sendable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension Array where Element == HeaderField {
    public subscript(name: String) -> String? {
        first { $0.name == name }?.value
    }
}
