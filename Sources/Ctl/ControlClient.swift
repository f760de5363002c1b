import Protocol

#if canImport(Glibc)
import Glibc
#endif

/// A blocking client for one request on a control socket.
struct ControlClient {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let fd: Int32

    init(path: String, timeoutSeconds: Int) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "cannot create a socket: \(Self.errorText())") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw Failure(description: "\(path): socket path too long")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if rc != 0 {
            let code = errno
            close(fd)
            throw Failure(description: "cannot connect to \(path): \(String(cString: strerror(code)))\(Self.hint(code))")
        }
        if timeoutSeconds > 0 {
            var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    private static func hint(_ code: Int32) -> String {
        switch code {
        case ENOENT: return " (is fastgw.socket or fastgw-agent.socket started? or pass --socket PATH)"
        case ECONNREFUSED: return " (nothing answers on it: is the daemon running?)"
        case EACCES: return " (run as root or as a member of the socket's group)"
        default: return ""
        }
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }

    func request(_ line: String) throws -> ControlReply {
        defer { close(fd) }
        var out = Array((line + "\n").utf8)
        var sent = 0
        while sent < out.count {
            let n = out.withUnsafeMutableBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "cannot send the request: \(Self.errorText())")
            }
            sent += n
        }
        var parser = ControlReplyParser()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw Failure(description: "no answer in time (see --timeout)") }
                throw Failure(description: "cannot read the answer: \(Self.errorText())")
            }
            if n == 0 { throw Failure(description: "the daemon closed the connection before answering") }
            do {
                if let reply = try parser.feed(chunk[0..<n]) { return reply }
            } catch {
                throw Failure(description: "malformed answer: \(error)")
            }
        }
    }
}

enum Output {
    static func write(_ text: String) {
        put(text, to: 1)
    }

    static func error(_ line: String) {
        put(line + "\n", to: 2)
    }

    private static func put(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n <= 0 {
                if errno == EINTR { continue }
                return
            }
            done += n
        }
    }
}
