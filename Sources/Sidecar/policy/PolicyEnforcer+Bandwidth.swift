import Protocol

/// Which `bandwidth` caps a routed stream passes: those of every policy its admission
/// checked (the same attachments, the same configuration generation), for its service.
extension PolicyEnforcer {
    /// A TCP connection to `port` served by `agent` (the chain of `admitTCP`).
    func bandwidth(port: Int, agent: String, service: String) -> BandwidthCaps? {
        caps(chain + set.chain(port: port) + set.chain(agent: agent), service: service)
    }

    /// An HTTP request: `checked` from `admitRequest(host:path:)`, then the serving agent's.
    func bandwidth(after checked: [PolicyCell], agent: String, service: String) -> BandwidthCaps? {
        caps(checked + set.chain(agent: agent), service: service)
    }

    private func caps(_ cells: [PolicyCell], service: String) -> BandwidthCaps? {
        // Most streams pass no cap: no set of identities to build for them.
        guard cells.contains(where: { $0.bandwidth != nil }) else { return nil }
        let tables = Self.without([], cells).compactMap(\.bandwidth)
        return tables.isEmpty ? nil : BandwidthCaps(tables: tables, service: service)
    }
}
