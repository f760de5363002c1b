#if canImport(Glibc)
import Glibc
#endif

enum ResourceLimits {
    /// Every public connection, tunnel connection and control client is a descriptor; the
    /// soft limit (often 1024) is raised to the hard one, as Go and nginx do for servers.
    /// Returns the limit now in force.
    @discardableResult
    static func raiseOpenFiles() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return Int(raised.rlim_cur) }
        }
        return Int(limit.rlim_cur)
    }

    /// The descriptor limit in force (soft), what connection limits are derived from.
    static var openFiles: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        // RLIM_INFINITY is all ones; no connection limit needs more than a million descriptors.
        return Int(min(limit.rlim_cur, 1 << 20))
    }
}
