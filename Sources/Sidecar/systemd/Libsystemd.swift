import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// libsystemd's functions, loaded the first time they are asked for (Sources/CSystemd/shim.h):
/// a process with no service manager, no inherited sockets and no journal never loads it.
enum Libsystemd {
    typealias Notify = @convention(c) (Int32, UnsafePointer<CChar>?) -> Int32

    /// The functions fastgw calls; the types are checked against libsystemd's declarations
    /// where they are taken from the loaded table.
    struct Functions: Sendable {
        let notify: Notify
        let listenFDsWithNames: @convention(c) (Int32, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32
        let watchdogEnabled: @convention(c) (Int32, UnsafeMutablePointer<UInt64>?) -> Int32
        let journalSendv: @convention(c) (UnsafePointer<iovec>?, Int32) -> Int32
    }

    private static let loaded: Result<Functions, StartupError> = {
        var table = fastgw_libsystemd()
        if let why = fastgw_libsystemd_load(&table) {
            return .failure(StartupError("cannot load libsystemd: \(String(cString: why))"))
        }
        // The loader returns an error unless every pointer is set.
        return .success(Functions(
            notify: table.notify!, listenFDsWithNames: table.listen_fds_with_names!,
            watchdogEnabled: table.watchdog_enabled!, journalSendv: table.journal_sendv!))
    }()

    static func functions() throws(StartupError) -> Functions {
        try loaded.get()
    }

    /// What the environment asks of libsystemd, if anything: a notify socket, inherited
    /// sockets, a watchdog. Checked at start so that a missing library stops the daemon with
    /// a message instead of leaving the service manager waiting for READY.
    static func checkEnvironment() throws(StartupError) {
        let variables: [String] = ["NOTIFY_SOCKET", "LISTEN_FDS", "WATCHDOG_USEC"]
        let wanted = variables.filter { getenv($0) != nil }
        guard !wanted.isEmpty else { return }
        do {
            _ = try functions()
        } catch {
            throw StartupError("\(error.description) (needed for \(wanted.joined(separator: ", ")))")
        }
    }
}
