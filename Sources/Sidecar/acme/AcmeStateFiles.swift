import Glibc

/// The ACME state directory: `account.key`, and per certificate (named by its first host)
/// `NAME/key.pem`, `NAME/chain.pem` and `NAME/state` (`AcmeFailureRecord`). Directories 0700,
/// files 0600, written atomically.
struct AcmeStateFiles {
    let directory: String

    var accountKey: String { "\(directory)/account.key" }
    func certificateDirectory(_ name: String) -> String { "\(directory)/\(name)" }
    func key(_ name: String) -> String { "\(directory)/\(name)/key.pem" }
    func chain(_ name: String) -> String { "\(directory)/\(name)/chain.pem" }
    func state(_ name: String) -> String { "\(directory)/\(name)/state" }
    /// The new key while its pair is being written (see `savePair`).
    func nextKey(_ name: String) -> String { "\(directory)/\(name)/key.pem.next" }

    /// Writes a new key and chain so that a crash at any point leaves a usable pair: the key
    /// goes to `key.pem.next`, then the chain replaces `chain.pem`, then the key is renamed
    /// into place. A crash between the last two leaves the new chain with `key.pem.next`,
    /// which `recoverPair` puts in place at the next start.
    func savePair(_ name: String, key: AcmeKey, chainPEM: String) throws(AcmeError) {
        try key.save(pemFile: nextKey(name))
        try Self.write(chainPEM, to: chain(name))
        guard rename(nextKey(name), self.key(name)) == 0 else {
            throw AcmeError("cannot save \(self.key(name)): \(String(cString: strerror(errno)))")
        }
    }

    /// After a crash inside `savePair`: if the chain does not load with `key.pem` but does with
    /// `key.pem.next`, that key is the chain's and is renamed into place. `loads` tells whether
    /// a chain and key file make a working pair.
    func recoverPair(_ name: String, loads: (String, String) -> Bool) {
        guard access(nextKey(name), F_OK) == 0, !loads(chain(name), key(name)), loads(chain(name), nextKey(name)) else { return }
        _ = rename(nextKey(name), key(name))
    }

    /// Creates `path` (and its parents) 0700 if missing.
    static func makeDirectory(_ path: String) throws(AcmeError) {
        var built = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            built += "/\(part)"
            if mkdir(built, 0o700) != 0 && errno != EEXIST {
                throw AcmeError("cannot create \(built): \(String(cString: strerror(errno)))")
            }
        }
    }

    static func read(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n == 0 { break }
            out += chunk[0..<n]
            // A chain is a few KiB; anything this large is not ours.
            if out.count > 1 << 20 { return nil }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The one writer of state files: a temporary file beside `path`, 0600 from its creation,
    /// synced and renamed into place, so a crash leaves the old file or the new one, never
    /// half of one.
    static func write(_ text: String, to path: String) throws(AcmeError) {
        let temporary = "\(path).tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AcmeError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(temporary)
                throw AcmeError("cannot write \(temporary): \(reason)")
            }
            written += n
        }
        let synced = fsync(fd) == 0
        close(fd)
        guard synced, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw AcmeError("cannot save \(path): \(reason)")
        }
    }
}
