import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Protocol

/// The gateway's admission at accept (DESIGN §9): connection limits per pool and per client
/// address, and the tunnel listener's refusal of addresses blocked for failed
/// authentication. A refused connection is closed at once with a reset (SO_LINGER 0: no
/// TIME_WAIT kept for it), counted, and logged once per interval with the count.
final class EdgeAdmission: Sendable {
    private let pools: [AdmissionPool: NIOLockedValueBox<ConnectionAdmission>] = [
        .public: NIOLockedValueBox(ConnectionAdmission()), .tunnel: NIOLockedValueBox(ConnectionAdmission()),
    ]
    /// Public connections by the client a trusted balancer's PROXY header named (the pool
    /// above counts them under the balancer's address).
    private let proxiedClients = NIOLockedValueBox(ConnectionAdmission())
    private let throttle = NIOLockedValueBox(AuthThrottle())
    private let current: NIOLockedValueBox<ConnectionLimits>
    private let trusted = NIOLockedValueBox(CIDRSet())
    let events: RepeatedEvents
    private let stats: GatewayStats

    init(limits: ConnectionLimits, events: RepeatedEvents, stats: GatewayStats) {
        self.current = NIOLockedValueBox(limits)
        self.events = events
        self.stats = stats
    }

    /// Swapped by a reload; connections already open stay.
    var limits: ConnectionLimits {
        get { current.withLockedValue { $0 } }
        set { current.withLockedValue { $0 = newValue } }
    }

    /// `[gateway] trusted_proxies`, swapped by a reload.
    var trustedProxies: CIDRSet {
        get { trusted.withLockedValue { $0 } }
        set { trusted.withLockedValue { $0 = newValue } }
    }

    func openConnections(_ pool: AdmissionPool) -> Int {
        pools[pool]!.withLockedValue { $0.open }
    }

    /// Called in the child channel initializer of an accepted connection, before it is
    /// registered: true counts it (until it closes), false means refuse it — the caller
    /// fails the initializer and NIO closes the socket, reset by `refuse`'s SO_LINGER 0.
    func admit(_ channel: Channel, pool: AdmissionPool) -> Bool {
        guard let address = channel.remoteAddress, let peer = address.ipEndpoint else { return true }
        let key = ClientKey(peer.address)
        if pool == .tunnel, case .blocked(let remaining) = throttle.withLockedValue({ $0.check(key, now: RepeatedEvents.now) }) {
            stats.connectionsRefused.add("tunnel_auth_blocked")
            reset(channel)
            events.record(.blockedAddressRefused, [
                "client": "\(address.fastgwDescription)", "address": "\(key)",
                "blocked_for_s": "\(remaining.components.seconds + 1)",
            ])
            return false
        }
        let box = pools[pool]!
        var limits = pool == .public ? self.limits.publicPool : self.limits.tunnelPool
        // A trusted balancer carries many clients: only the total holds it back.
        if pool == .public, trustedProxies.contains(peer.address) { limits.perClient = limits.total }
        let decision = box.withLockedValue { $0.admit(key, limits: limits) }
        guard decision == .admitted else {
            stats.connectionsRefused.add("\(pool.rawValue)_\(decision.rawValue)")
            reset(channel)
            events.record(.limitReached(pool: pool, decision: decision), [
                "client": "\(address.fastgwDescription)", "reason": "\(decision.rawValue)",
                "limit": "\(decision == .refusedTotal ? limits.total : limits.perClient)",
            ])
            return false
        }
        let gauge = pool == .tunnel ? stats.tunnelConnectionsOpen : nil
        gauge?.add()
        channel.closeFuture.whenComplete { _ in
            box.withLockedValue { $0.release(key) }
            gauge?.subtract()
        }
        return true
    }

    /// After a trusted balancer's PROXY header named `client` on `channel`: counts the
    /// connection under the client's address as well (`max_connections_per_ip`, DESIGN §9),
    /// so one client behind the balancer cannot take every slot the balancer may use.
    /// Returns the limit when the client already has its share (the caller refuses the
    /// connection; nothing is counted), nil when counted until the channel closes. A
    /// client that is itself a trusted proxy carries many clients and is not counted.
    func admitProxiedClient(_ channel: Channel, client: IPAddress) -> Int? {
        guard !trustedProxies.contains(client) else { return nil }
        let key = ClientKey(client)
        let limit = limits.publicPool.perClient
        let decision = proxiedClients.withLockedValue { $0.admit(key, limits: .init(total: .max, perClient: limit)) }
        guard decision == .admitted else { return limit }
        let box = proxiedClients
        // Registered after counting: a channel already closed runs it at once.
        channel.closeFuture.whenComplete { _ in box.withLockedValue { $0.release(key) } }
        return nil
    }

    /// How long `key` is still blocked from tunnel handshakes (too many failed
    /// authentications), or nil. The dedicated tunnel listener checks at accept; an HTTPS
    /// listener that also takes agents, when a connection turns out to be an agent's.
    func tunnelBlock(_ key: ClientKey) -> Duration? {
        if case .blocked(let remaining) = throttle.withLockedValue({ $0.check(key, now: RepeatedEvents.now) }) { return remaining }
        return nil
    }

    /// A failed tunnel authentication (401/403) from `key`'s client.
    func authenticationFailed(_ key: ClientKey?) {
        guard let key else { return }
        guard let block = throttle.withLockedValue({ $0.failed(key, now: RepeatedEvents.now) }) else { return }
        stats.addressesBlocked.add()
        events.record(.addressBlocked, [
            "address": "\(key)", "blocked_for_s": "\(block.components.seconds)",
            "failures": "\(throttle.withLockedValue { $0.policy.failures })",
        ])
    }

    func authenticationSucceeded(_ key: ClientKey?) {
        guard let key else { return }
        throttle.withLockedValue { $0.succeeded(key) }
    }

    /// A reset instead of a FIN for a refused connection (at accept, or after it when a PROXY
    /// header is not right): the client learns at once, and the gateway keeps no TIME_WAIT
    /// state for it. Set before closing.
    func reset(_ channel: Channel) {
        // On the channel's loop this runs at once, before the initializer's failure closes it.
        _ = (channel as? SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
    }
}

/// Fails a child channel initializer whose connection `EdgeAdmission` refused.
struct ConnectionRefusedAtAccept: Error {}
