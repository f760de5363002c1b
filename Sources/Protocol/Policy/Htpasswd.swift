/// A parsed htpasswd file: `user:hash` lines, `#` comments and blank lines. Only hash formats
/// the system's libcrypt verifies in a way worth trusting are accepted — bcrypt (`$2y$`,
/// `$2b$`, `$2a$`) and SHA-512-crypt (`$6$`) — so a weak or unknown entry is an error with
/// its line at load time, never a login that silently fails (or succeeds) later.
public struct Htpasswd: Equatable, Sendable {
    public enum Scheme: String, Equatable, Sendable {
        case bcrypt
        case sha512crypt = "sha512-crypt"
    }

    public struct Entry: Equatable, Sendable {
        public let user: String
        /// The whole crypt string (`$2y$10$…`), which is also the setting libcrypt takes.
        public let hash: String
        public let scheme: Scheme
        public let line: Int

        /// The same user with the same hash: where it stands in the file does not matter, so
        /// adding a comment or another user leaves the other entries (and a reload's policy
        /// equality, which keeps its rate buckets) as they were.
        public static func == (a: Entry, b: Entry) -> Bool {
            a.user == b.user && a.hash == b.hash
        }
    }

    /// Bounds on what is read, so a wrong path (a log, a disk image) cannot load unbounded data.
    public static let maxFileBytes = 1 << 20
    public static let maxLineBytes = 1024
    public static let maxEntries = 10_000
    public static let maxUserBytes = 255
    /// Above these a single check takes seconds of a verifier thread (cost 16 ≈ 5 s on a
    /// 2020s core): an operator mistake that would starve every login, refused at load.
    public static let maxBcryptCost = 16
    public static let maxSHA512Rounds = 1_000_000

    private var byUser: [String: Entry]

    public var count: Int { byUser.count }

    public func entry(for user: String) -> Entry? { byUser[user] }

    public static func parse(_ bytes: [UInt8], file: String) -> Result<Htpasswd, ConfigError> {
        func problem(_ line: Int?, _ message: String) -> Result<Htpasswd, ConfigError> {
            .failure(ConfigError([ConfigDiagnostic(file: file, line: line, message: message)]))
        }
        if bytes.count > maxFileBytes {
            return problem(nil, "htpasswd file is larger than \(maxFileBytes) bytes; is this the right file?")
        }
        var byUser: [String: Entry] = [:]
        var diagnostics: [ConfigDiagnostic] = []
        var number = 0
        for raw in bytes.split(separator: 10, omittingEmptySubsequences: false) {
            number += 1
            var line = raw[...]
            if line.last == 13 { line = line.dropLast() }
            if line.count > maxLineBytes {
                diagnostics.append(ConfigDiagnostic(file: file, line: number, message: "line is longer than \(maxLineBytes) bytes"))
                continue
            }
            // A byte-order mark an editor put first, and blanks around an entry, are not part
            // of the user name or the hash.
            if number == 1, line.starts(with: [0xEF, 0xBB, 0xBF]) { line = line.dropFirst(3) }
            let content = line.drop { $0 == 32 || $0 == 9 }
            if content.isEmpty || content.first == UInt8(ascii: "#") { continue }
            var entryBytes = content
            while let last = entryBytes.last, last == 32 || last == 9 { entryBytes = entryBytes.dropLast() }
            switch Self.parseEntry(entryBytes, number: number) {
            case .failure(let problem):
                diagnostics.append(ConfigDiagnostic(file: file, line: number, message: problem.message))
            case .success(let entry):
                if let first = byUser[entry.user] {
                    diagnostics.append(ConfigDiagnostic(
                        file: file, line: number, message: "user \"\(entry.user)\" is already defined on line \(first.line)"))
                } else if byUser.count == maxEntries {
                    return problem(number, "more than \(maxEntries) users in one htpasswd file")
                } else {
                    byUser[entry.user] = entry
                }
            }
            if diagnostics.count >= 20 { break }
        }
        if !diagnostics.isEmpty { return .failure(ConfigError(diagnostics)) }
        return .success(Htpasswd(byUser: byUser))
    }

    private static let howTo = "supported are bcrypt (htpasswd -B FILE USER) and SHA-512-crypt (mkpasswd -m sha-512)"

    private static func parseEntry(_ line: ArraySlice<UInt8>, number: Int) -> Result<Entry, Problem> {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            return .failure(Problem("expected user:hash"))
        }
        guard let user = String(validating: line[..<colon], as: UTF8.self), !user.isEmpty,
              user.utf8.count <= maxUserBytes, !user.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) else {
            return .failure(Problem("user name must be 1 to \(maxUserBytes) bytes of UTF-8 without control characters"))
        }
        let hash = String(decoding: line[(colon + 1)...], as: UTF8.self)
        switch Self.scheme(of: hash) {
        case .success(let scheme):
            return .success(Entry(user: user, hash: hash, scheme: scheme, line: number))
        case .failure(let why):
            return .failure(Problem("user \"\(user)\": \(why.message); \(howTo)"))
        }
    }

    /// Recognises the hash format, checking the exact shape libcrypt expects.
    static func scheme(of hash: String) -> Result<Scheme, Problem> {
        let b = Array(hash.utf8)
        if hash.hasPrefix("$2y$") || hash.hasPrefix("$2b$") || hash.hasPrefix("$2a$") {
            // $2y$NN$ then 22 salt and 31 hash characters of bcrypt's base64 alphabet.
            guard b.count == 60, b[6] == UInt8(ascii: "$"), b[4..<6].allSatisfy({ (48...57).contains($0) }),
                  let cost = Int(String(decoding: b[4..<6], as: UTF8.self)),
                  b[7...].allSatisfy(isCryptBase64) else {
                return .failure(Problem("malformed bcrypt hash"))
            }
            guard (4...maxBcryptCost).contains(cost) else {
                return .failure(Problem("bcrypt cost \(cost) is outside 4...\(maxBcryptCost) (each step doubles the time of every check)"))
            }
            return .success(.bcrypt)
        }
        if hash.hasPrefix("$6$") {
            var parts = hash.utf8.split(separator: UInt8(ascii: "$"), omittingEmptySubsequences: false).dropFirst(2)
            if let first = parts.first, first.starts(with: "rounds=".utf8) {
                guard let rounds = Int(String(decoding: first.dropFirst(7), as: UTF8.self)),
                      String(rounds) == String(decoding: first.dropFirst(7), as: UTF8.self) else {
                    return .failure(Problem("malformed SHA-512-crypt rounds"))
                }
                guard (1000...maxSHA512Rounds).contains(rounds) else {
                    return .failure(Problem("SHA-512-crypt rounds \(rounds) is outside 1000...\(maxSHA512Rounds)"))
                }
                parts = parts.dropFirst()
            }
            guard parts.count == 2, let salt = parts.first, let sum = parts.last, (1...16).contains(salt.count),
                  salt.allSatisfy(isCryptBase64), sum.count == 86, sum.allSatisfy(isCryptBase64) else {
                return .failure(Problem("malformed SHA-512-crypt hash"))
            }
            return .success(.sha512crypt)
        }
        if hash.hasPrefix("$apr1$") || hash.hasPrefix("$1$") { return .failure(Problem("MD5-based hashes are not accepted")) }
        if hash.hasPrefix("{SHA}") { return .failure(Problem("unsalted SHA-1 ({SHA}) hashes are not accepted")) }
        if hash.hasPrefix("$5$") { return .failure(Problem("SHA-256-crypt ($5$) hashes are not accepted")) }
        if hash.hasPrefix("$y$") || hash.hasPrefix("$7$") || hash.hasPrefix("$gy$") {
            return .failure(Problem("yescrypt/scrypt hashes are not accepted"))
        }
        if b.count == 13 && b.allSatisfy(isCryptBase64) { return .failure(Problem("DES crypt hashes are not accepted")) }
        if hash.isEmpty { return .failure(Problem("empty hash")) }
        return .failure(Problem("not a recognised password hash (plain text?)"))
    }

    struct Problem: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    /// crypt(3)'s base64 alphabet: `./0-9A-Za-z`.
    private static func isCryptBase64(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"):
            return true
        default:
            return false
        }
    }
}
