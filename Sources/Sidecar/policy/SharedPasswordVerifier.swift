import NIOConcurrencyHelpers

/// The gateway's one `PasswordVerifier`, shared by every policy with `basic_auth` and kept
/// across reloads (its cache and in-flight caps are the gateway's). Its threads start with
/// the first check, so a gateway without basic_auth runs none.
final class SharedPasswordVerifier: Sendable {
    private let box = NIOLockedValueBox<PasswordVerifier?>(nil)

    var verifier: PasswordVerifier {
        box.withLockedValue { v in
            if let v { return v }
            let made = PasswordVerifier()
            v = made
            return made
        }
    }

    /// At exit, off the event loops (joining the threads blocks).
    func shutdown() {
        try? box.withLockedValue { $0 }?.shutdown()
    }
}
