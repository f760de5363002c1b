import Logging

/// The events an operator searches the journal for, each with a fixed `MESSAGE_ID`
/// (`journalctl MESSAGE_ID=…`, listed in fastgw(8)). A log call tags one with the `event`
/// metadata key; logfmt shows it as `event=agent_connected`.
enum KeyEvent: String, CaseIterable, Sendable {
    case agentConnected = "agent_connected"
    case agentDisconnected = "agent_disconnected"
    case registrationRejected = "registration_rejected"
    case reloadSucceeded = "reload_succeeded"
    case reloadFailed = "reload_failed"
    case drainStarted = "drain_started"
    case drainFinished = "drain_finished"
    /// A per-connection access record (`[log] access = true`).
    case connectionClosed = "connection_closed"
    /// One HTTP request answered (an access record, or any request that failed with 5xx).
    case requestCompleted = "request_completed"
    /// Connections refused at accept because a connection limit was reached (with a count).
    case connectionLimitReached = "connection_limit_reached"
    /// An address blocked after failed tunnel authentications, or refused while blocked.
    case authThrottled = "auth_throttled"
    /// An ACME order succeeded (first certificate or renewal) / failed (the old one stays).
    case certificateIssued = "certificate_issued"
    case certificateFailed = "certificate_failed"

    /// Never change one: saved journal queries and alerts depend on them.
    var messageID: String {
        switch self {
        case .agentConnected: return "37230ba8e0c54c2aa31e0780843b5a78"
        case .agentDisconnected: return "33ea9bc2e70a469b88759c6b6f7ddcf1"
        case .registrationRejected: return "de7c71c2dcb944f3bad6d1cbfce97b11"
        case .reloadSucceeded: return "987a0cfd4d5c43a78b383faf5c208709"
        case .reloadFailed: return "7e078716366c4d4eab5483b40ce5532a"
        case .drainStarted: return "03daa613a6a64241aab03a56e189a708"
        case .drainFinished: return "6f8e311b55d24a209641846c26f9e86b"
        case .connectionClosed: return "d3ccd93489524827ae2bc09fa854189c"
        case .requestCompleted: return "37f5bb9550d6492b9c73013ec491c762"
        case .connectionLimitReached: return "7b9562c92f8e4d5e982dafcf0a7fe9c9"
        case .authThrottled: return "9ce976893d41420586e220344c7e4808"
        case .certificateIssued: return "5b0f3e1c8a7d4f62b9e4d1a0c3f57e21"
        case .certificateFailed: return "c81d2a47e6b94f0d8a35f2e9b7140d6c"
        }
    }

    static let metadataKey = "event"
}

extension Logger.Metadata {
    /// `metadata` tagged with a key event.
    static func event(_ event: KeyEvent, _ metadata: Logger.Metadata = [:]) -> Logger.Metadata {
        var tagged = metadata
        tagged[KeyEvent.metadataKey] = "\(event.rawValue)"
        return tagged
    }
}
