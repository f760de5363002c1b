import Foundation
import NIOCore
import NIOPosix
import XCTest

@testable import Sidecar

/// Real processes for the ACME tests: pebble (Let's Encrypt's test server) with a TLS
/// certificate made here, dnsmasq answering the test names with 127.0.0.1, and what answers
/// the challenges (python3 -m http.server, openssl s_server). Everything on loopback; every
/// process is ended by `stopAll`.
final class AcmeTestBed: @unchecked Sendable {
    let directory: String
    let group: EventLoopGroup
    private var processes: [ChildProcess] = []
    private let lock = NSLock()

    /// Skips when pebble is missing, except in CI where it is installed (scripts/install-deps.sh).
    static func requirePebble() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/pebble") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                XCTFail("pebble is not installed (scripts/install-deps.sh test)")
            }
            throw XCTSkip("pebble is not installed")
        }
    }

    init(group: EventLoopGroup) throws {
        self.group = group
        directory = NSTemporaryDirectory() + "fastgw-acme-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { directory + "/" + name }

    func stopAll() {
        let all = lock.withLock { processes }
        for p in all { p.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    @discardableResult
    func spawn(_ executable: String, _ arguments: [String], log: String, environment: [String: String] = [:]) throws -> ChildProcess {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let child = try ChildProcess(executable, arguments, output: path(log), environment: env)
        lock.withLock { processes.append(child) }
        return child
    }

    /// Runs a short command to its end; its output (stdout and stderr) goes to `log`.
    @discardableResult
    func run(_ executable: String, _ arguments: [String], log: String) throws -> Int32 {
        try ChildProcess(executable, arguments, output: path(log), environment: ProcessInfo.processInfo.environment).wait()
    }

    func logText(_ name: String) -> String { (try? String(contentsOfFile: path(name), encoding: .utf8)) ?? "" }

    func freePort() throws -> Int {
        let ch = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        let port = ch.localAddress!.port!
        try ch.close().wait()
        return port
    }

    /// A port free for both TCP and UDP (dnsmasq binds both).
    func freeDNSPort() throws -> Int {
        for _ in 0..<20 {
            let port = try freePort()
            if let udp = try? DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: port).wait() {
                try udp.close().wait()
                return port
            }
        }
        throw AcmeError("no free DNS port")
    }

    func waitForPort(_ port: Int, seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let ch = try? ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).wait() {
                try? ch.close().wait()
                return true
            }
            usleep(50_000)
        }
        return false
    }

    struct Pebble {
        let directoryURL: String
        let caFile: String
        let httpPort: Int
        let tlsPort: Int
    }

    /// Pebble with its own listener certificate; `alwaysValid` skips validation, else the VA
    /// resolves names through `dnsPort` and connects to httpPort/tlsPort on 127.0.0.1.
    func startPebble(alwaysValid: Bool, dnsPort: Int? = nil, validitySeconds: Int? = nil) throws -> Pebble {
        let cert = path("pebble.crt"), key = path("pebble.key")
        let made = try run("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
            "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ], log: "openssl-req.log")
        guard made == 0 else { throw AcmeError("openssl req failed: \(logText("openssl-req.log"))") }
        let listen = try freePort(), management = try freePort(), http = try freePort(), tls = try freePort()
        var settings: [String: Any] = [
            "listenAddress": "127.0.0.1:\(listen)", "managementListenAddress": "127.0.0.1:\(management)",
            "certificate": cert, "privateKey": key, "httpPort": http, "tlsPort": tls, "ocspResponderURL": "",
            "externalAccountBindingRequired": false, "retryAfter": ["authz": 1, "order": 1],
        ]
        if let validitySeconds { settings["certificateValidityPeriod"] = validitySeconds }
        let config = try JSONSerialization.data(withJSONObject: ["pebble": settings])
        try config.write(to: URL(fileURLWithPath: path("pebble.json")))
        var env = ["PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"]
        if alwaysValid { env["PEBBLE_VA_ALWAYS_VALID"] = "1" }
        var args = ["-config", path("pebble.json")]
        if let dnsPort { args += ["-dnsserver", "127.0.0.1:\(dnsPort)"] }
        try spawn("/usr/bin/pebble", args, log: "pebble.log", environment: env)
        guard waitForPort(listen) else { throw AcmeError("pebble did not start: \(logText("pebble.log"))") }
        return Pebble(directoryURL: "https://127.0.0.1:\(listen)/dir", caFile: cert, httpPort: http, tlsPort: tls)
    }

    /// dnsmasq answering every name under `domain` with 127.0.0.1; returns its port.
    func startDNS(domain: String) throws -> Int {
        for _ in 0..<3 {
            let port = try freeDNSPort()
            let p = try spawn("/usr/sbin/dnsmasq", [
                "--no-daemon", "--conf-file=/dev/null", "--port=\(port)", "--listen-address=127.0.0.1", "--bind-interfaces",
                "--no-resolv", "--no-hosts", "--pid-file=", "--user=root", "--address=/\(domain)/127.0.0.1", "--log-facility=-",
            ], log: "dnsmasq.log")
            if waitForPort(port, seconds: 5), p.isRunning { return port }
            p.stop()
        }
        throw AcmeError("dnsmasq did not start: \(logText("dnsmasq.log"))")
    }
}

/// A sink that answers challenges with real servers: HTTP-01 tokens as files under a
/// webroot served by `python3 -m http.server`, TLS-ALPN-01 with `openssl s_server` offering
/// only acme-tls/1. Records what was published and withdrawn.
final class ServingChallengeSink: AcmeChallengeSink, @unchecked Sendable {
    private let bed: AcmeTestBed
    private let tlsPort: Int
    private let lock = NSLock()
    private var servers: [String: ChildProcess] = [:]
    private(set) var published: [String] = []
    private(set) var withdrawn: [String] = []
    let webroot: String

    init(bed: AcmeTestBed, httpPort: Int?, tlsPort: Int) throws {
        self.bed = bed
        self.tlsPort = tlsPort
        webroot = bed.path("webroot")
        try FileManager.default.createDirectory(atPath: webroot + "/.well-known/acme-challenge", withIntermediateDirectories: true)
        if let httpPort {
            try bed.spawn("/usr/bin/python3", ["-m", "http.server", "\(httpPort)", "--bind", "127.0.0.1", "--directory", webroot], log: "http.log")
            guard bed.waitForPort(httpPort) else { throw AcmeError("http.server did not start: \(bed.logText("http.log"))") }
        }
    }

    func publishHTTP01(token: String, keyAuthorization: String) {
        lock.withLock { published.append("http-01 " + token) }
        try? keyAuthorization.write(toFile: webroot + "/.well-known/acme-challenge/" + token, atomically: true, encoding: .utf8)
    }

    func withdrawHTTP01(token: String) {
        lock.withLock { withdrawn.append("http-01 " + token) }
        try? FileManager.default.removeItem(atPath: webroot + "/.well-known/acme-challenge/" + token)
    }

    func publishTLSALPN01(host: String, certificatePEM: String, privateKeyPEM: String) {
        lock.withLock { published.append("tls-alpn-01 " + host) }
        let cert = bed.path("alpn-\(host).crt"), key = bed.path("alpn-\(host).key")
        try? certificatePEM.write(toFile: cert, atomically: true, encoding: .utf8)
        try? privateKeyPEM.write(toFile: key, atomically: true, encoding: .utf8)
        guard let p = try? bed.spawn("/usr/bin/openssl", [
            "s_server", "-accept", "127.0.0.1:\(tlsPort)", "-cert", cert, "-key", key, "-alpn", "acme-tls/1", "-www", "-quiet",
        ], log: "s_server-\(host).log") else { return }
        _ = bed.waitForPort(tlsPort)
        lock.withLock { servers[host] = p }
    }

    func withdrawTLSALPN01(host: String) {
        let p = lock.withLock {
            withdrawn.append("tls-alpn-01 " + host)
            return servers.removeValue(forKey: host)
        }
        p?.stop()
    }
}

/// Publishes nothing anywhere: for always-valid pebble and for failing validations.
final class RecordingChallengeSink: AcmeChallengeSink, @unchecked Sendable {
    private let lock = NSLock()
    private var events: [String] = []

    var log: [String] { lock.withLock { events } }

    func publishHTTP01(token: String, keyAuthorization: String) { lock.withLock { events.append("publish http-01 \(token)") } }
    func publishTLSALPN01(host: String, certificatePEM: String, privateKeyPEM: String) {
        lock.withLock { events.append("publish tls-alpn-01 \(host)") }
    }
    func withdrawHTTP01(token: String) { lock.withLock { events.append("withdraw http-01 \(token)") } }
    func withdrawTLSALPN01(host: String) { lock.withLock { events.append("withdraw tls-alpn-01 \(host)") } }
}

/// A child process started with posix_spawn and reaped with waitpid on its own pid.
/// Foundation's Process is not used here: its monitor thread blocks in wait4 on one child
/// (a long-running dnsmasq) and then never notices that a short command has ended.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    private var status: Int32?
    private let lock = NSLock()

    init(_ executable: String, _ arguments: [String], output: String, environment: [String: String]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        // The child starts with no blocked signals and default dispositions: the test
        // runner's threads may block or ignore some (SIGTERM must end the child).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw AcmeError("cannot start \(executable): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    var isRunning: Bool {
        lock.withLock {
            if status != nil { return false }
            var s: Int32 = 0
            if waitpid(pid, &s, WNOHANG) == pid {
                status = s
                return false
            }
            return true
        }
    }

    /// Waits for the end; the exit status (or 128 + signal).
    func wait() -> Int32 {
        lock.withLock {
            if status == nil {
                var s: Int32 = 0
                while waitpid(pid, &s, 0) < 0 && errno == EINTR {}
                status = s
            }
            let s = status!
            return s & 0x7f == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f)
        }
    }

    /// SIGTERM, then SIGKILL if it has not ended within 5 s.
    func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        for _ in 0..<100 where isRunning { usleep(50_000) }
        if isRunning { kill(pid, SIGKILL) }
        _ = wait()
    }
}
