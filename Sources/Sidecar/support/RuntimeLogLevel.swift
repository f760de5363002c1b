import Logging
import Synchronization

/// The process-wide log level: set at start from `--log-level`, changed at run time by the
/// `log-level` control command. Every log handler reads it, so a change applies at once.
enum RuntimeLogLevel {
    private static let index = Atomic<Int>(Logger.Level.allCases.firstIndex(of: .info)!)

    static var current: Logger.Level {
        get { Logger.Level.allCases[index.load(ordering: .relaxed)] }
        set { index.store(Logger.Level.allCases.firstIndex(of: newValue)!, ordering: .relaxed) }
    }
}
