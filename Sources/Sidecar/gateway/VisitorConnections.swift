import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// Live visitor connections, so that a reload can close those whose `[[visitor]]` was removed
/// or whose credentials changed (as it does for agents), and `visitors` can list them.
final class VisitorConnections: Sendable {
    struct Entry: Sendable {
        let name: String
        let remote: String
        let carrier: String
        let token: String
        let certificate: PeerCertificate?
        let since: NIODeadline
        let tunnel: LoopBoundRef<TunnelConnection>
    }

    private let state = NIOLockedValueBox<(next: UInt64, all: [UInt64: Entry])>((1, [:]))

    func add(_ entry: Entry) -> UInt64 {
        state.withLockedValue { s in
            let id = s.next
            s.next += 1
            s.all[id] = entry
            return id
        }
    }

    func remove(_ id: UInt64) {
        state.withLockedValue { _ = $0.all.removeValue(forKey: id) }
    }

    var all: [Entry] {
        state.withLockedValue { s in s.all.keys.sorted().map { s.all[$0]! } }
    }

    /// The connections a new configuration withdraws, with why; they are forgotten here.
    func withdrawn(
        by grants: [GatewayConfig.AgentGrant], reverify: (PeerCertificate) -> PeerCertificate
    ) -> [(tunnel: LoopBoundRef<TunnelConnection>, reason: String)] {
        state.withLockedValue { s in
            var out: [(LoopBoundRef<TunnelConnection>, String)] = []
            for (id, e) in s.all {
                let reason: String?
                if let grant = grants.first(where: { $0.name == e.name }) {
                    let certificate = grant.auth.usesCertificate ? e.certificate.map(reverify) : e.certificate
                    reason = TunnelHandshake.recheck((e.token, certificate), agent: e.name, grant: grant, peer: .visitor)
                } else {
                    reason = "visitor \"\(e.name)\" was removed from the configuration"
                }
                if let reason {
                    out.append((e.tunnel, reason))
                    s.all[id] = nil
                }
            }
            return out
        }
    }
}
