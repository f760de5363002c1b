import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Protocol

/// Obtains and renews the gateway's ACME certificates: one order at a time, state (account
/// key, certificate keys and chains) kept in `[acme] state_directory` and reused at start, new
/// certificates swapped into the https listeners without a reload, failures logged and retried
/// with backoff while the old certificate keeps serving.
final class AcmeManager: Sendable {
    /// One certificate the plan wants, as `fastgwctl certificates` shows it.
    struct Entry: Sendable {
        var hosts: [String]
        var issuer: String?
        var notBefore: Int?
        var notAfter: Int?
        /// When the next order for it is placed (seconds since the epoch).
        var nextAttempt: Int
        var failures = 0
        var lastError: String?
        var lastFailure: Int?
        /// The challenge kind whose validation failed last: the next order tries it last.
        var lastFailedKind: AcmeChallengeKind?
        /// When its ARI window was last asked for (`AcmeRenewal.ariPollInterval`).
        var ariCheckedAt = 0

        var name: String { AcmeHosts.stateName(hosts) }
    }

    private struct State {
        var config: AcmeConfig?
        /// Which challenge kinds the listeners can answer (HTTP-01: http, TLS-ALPN-01: https).
        var httpListener = false
        var httpsListener = false
        var entries: [Entry] = []
        var issued = 0
        var failed = 0
        var running: Task<Void, Never>?
    }

    private let state = NIOLockedValueBox(State())
    private let selection: AcmeTLSSelection
    private let group: EventLoopGroup
    private let logger: Logger

    init(selection: AcmeTLSSelection, group: EventLoopGroup, logger: Logger) {
        self.selection = selection
        self.group = group
        self.logger = logger
    }

    static func now() -> Int { Int(time(nil)) }

    /// At start and after every reload: which certificates are wanted (`covered`: the static
    /// certificates' patterns); stored ones are reused, so a restart orders nothing that is
    /// still valid.
    func apply(_ config: GatewayConfig, covered: [HostPattern]) {
        let plan = AcmeHosts.plan(config, covered: covered)
        for note in plan.notes { logger.warning("\(note)") }
        selection.store.manage(Set(plan.certificates.flatMap { $0 }))
        guard let acme = config.acme else {
            state.withLockedValue { $0.config = nil; $0.entries = [] }
            return
        }
        let renewal = AcmeRenewal(renewBefore: acme.renewBefore.map { Int($0.components.seconds) })
        // Stored state is read (file I/O) outside the lock for certificates new to the plan;
        // the merge then happens in one locked section against the entries as they are at
        // that moment, so an order that finished meanwhile is not overwritten by a stale copy.
        let previous = state.withLockedValue { $0.entries.map(\.hosts) }
        let loaded = plan.certificates.filter { !previous.contains($0) }.map { loadStored($0, acme: acme, renewal: renewal) }
        let (start, entries) = state.withLockedValue { s -> (Bool, [Entry]) in
            s.entries = plan.certificates.map { hosts in
                guard var kept = s.entries.first(where: { $0.hosts == hosts }) else {
                    return loaded.first { $0.hosts == hosts } ?? Entry(hosts: hosts, nextAttempt: Self.now())
                }
                // A changed renew_before applies to the certificate in hand at once.
                if kept.failures == 0, let nb = kept.notBefore, let na = kept.notAfter {
                    kept.nextAttempt = renewal.renewAt(notBefore: nb, notAfter: na, random: .random(in: 0..<1))
                }
                return kept
            }
            s.config = acme
            s.httpListener = config.listeners.contains { $0.kind == .http }
            s.httpsListener = config.listeners.contains { $0.kind == .https }
            return (s.running == nil, s.entries)
        }
        logger.info("acme certificates planned", metadata: [
            "certificates": "\(entries.count)", "directory": "\(acme.directory)",
            "hosts": "\(entries.flatMap(\.hosts).joined(separator: ","))",
        ])
        if start {
            let task = Task { await self.run() }
            state.withLockedValue { $0.running = task }
        }
    }

    func stop() {
        state.withLockedValue { $0.running?.cancel() }
    }

    /// A stored key and chain for exactly these hosts, still valid and from the same
    /// directory: served at once, renewed when due. A stored failure record (`NAME/state`)
    /// keeps its backoff across the restart. Anything else is ordered now; a certificate with
    /// stored state that is due waits 0–60 s at random first, so gateways restarted together
    /// do not all call the CA in the same second.
    private func loadStored(_ hosts: [String], acme: AcmeConfig, renewal: AcmeRenewal) -> Entry {
        let now = Self.now()
        var entry = Entry(hosts: hosts, nextAttempt: now)
        let files = AcmeStateFiles(directory: acme.stateDirectory)
        let record = AcmeStateFiles.read(files.state(entry.name)).flatMap(AcmeFailureRecord.init(text:))
        let sameCA = record?.directory == acme.directory
        if let record, sameCA, record.failures > 0 {
            entry.failures = record.failures
            entry.nextAttempt = max(now, record.nextAttempt)
            entry.lastFailure = record.lastFailure
            entry.lastError = record.lastError
        }
        func delayed(_ e: Entry) -> Entry {
            guard record != nil, e.nextAttempt <= now else { return e }
            var e = e
            e.nextAttempt = now + Int.random(in: 0...60)
            return e
        }
        files.recoverPair(entry.name) { chain, key in
            (try? TLSContext.server(certificateChain: chain, privateKey: key, alpn: PublicCertificates.alpn)) != nil
        }
        guard let pem = AcmeStateFiles.read(files.chain(entry.name)), let info = AcmeCertificateInfo.read(chainPEM: pem),
            Set(hosts).isSubset(of: Set(info.dnsNames.map { $0.lowercased() })), info.notAfter > now
        else { return delayed(entry) }
        guard sameCA else {
            logger.notice("stored ACME certificate is not known to come from the configured directory; ordering a new one", metadata: [
                "hosts": "\(hosts.joined(separator: ","))", "directory": "\(acme.directory)",
            ])
            return entry
        }
        do {
            let context = try TLSContext.server(
                certificateChain: files.chain(entry.name), privateKey: files.key(entry.name), alpn: PublicCertificates.alpn)
            selection.store.install(context, hosts: hosts)
        } catch {
            logger.warning("stored ACME certificate does not load; ordering a new one", metadata: [
                "hosts": "\(hosts.joined(separator: ","))", "error": "\(error)",
            ])
            return entry
        }
        entry.issuer = info.issuer
        entry.notBefore = info.notBefore
        entry.notAfter = info.notAfter
        // The first ARI poll after a start comes at a random moment within the interval.
        entry.ariCheckedAt = now - Int.random(in: 0..<AcmeRenewal.ariPollInterval)
        if entry.failures == 0 {
            entry.nextAttempt = renewal.renewAt(notBefore: info.notBefore, notAfter: info.notAfter, random: .random(in: 0..<1))
        }
        entry = delayed(entry)
        logger.info("reusing stored ACME certificate", metadata: [
            "hosts": "\(hosts.joined(separator: ","))", "not_after": "\(info.notAfter)", "next_renewal": "\(entry.nextAttempt)",
        ])
        return entry
    }

    /// One order at a time, the earliest due first; checks once a second (cheap: a lock).
    private func run() async {
        while !Task.isCancelled {
            let now = Self.now()
            let due = state.withLockedValue { s -> (Entry, AcmeConfig, [AcmeChallengeKind])? in
                guard let config = s.config else { return nil }
                guard let entry = s.entries.filter({ $0.nextAttempt <= now }).min(by: { $0.nextAttempt < $1.nextAttempt }) else { return nil }
                let kinds = AcmeChallengeKind.forOrder(
                    configured: config.challenges.compactMap(AcmeChallengeKind.init(rawValue:)),
                    httpListener: s.httpListener, httpsListener: s.httpsListener, lastFailed: entry.lastFailedKind)
                return (entry, config, kinds)
            }
            if let (entry, config, kinds) = due {
                await order(entry, acme: config, kinds: kinds)
            } else if let (entry, config) = ariDue(now: now) {
                await pollARI(entry, acme: config)
            } else {
                try? await Task.sleep(nanoseconds: 1_000_000_000)
            }
        }
    }

    /// A certificate in hand, not failing, whose ARI window was last asked for an interval ago.
    private func ariDue(now: Int) -> (Entry, AcmeConfig)? {
        state.withLockedValue { s in
            guard let config = s.config else { return nil }
            let entry = s.entries.first { $0.notAfter != nil && $0.failures == 0 && $0.ariCheckedAt + AcmeRenewal.ariPollInterval <= now }
            return entry.map { ($0, config) }
        }
    }

    /// Asks the CA's renewalInfo for the certificate's window again and moves the renewal into
    /// it (at once when it has begun). No window (no ARI, an error) leaves the schedule alone.
    private func pollARI(_ entry: Entry, acme: AcmeConfig) async {
        let files = AcmeStateFiles(directory: acme.stateDirectory)
        var window: (start: Int, end: Int)?
        if let chain = AcmeStateFiles.read(files.chain(entry.name)), let account = try? accountKey(files) {
            let client = AcmeClient(directoryURL: acme.directory, trustCAFile: acme.ca, accountKey: account, email: acme.email, group: group)
            window = await client.renewalWindow(certificatePEM: chain)
        }
        let now = Self.now()
        let renewal = AcmeRenewal(renewBefore: acme.renewBefore.map { Int($0.components.seconds) })
        var moved: Int?
        update(entry.hosts) { e in
            e.ariCheckedAt = now
            guard e.failures == 0, e.notAfter == entry.notAfter else { return }
            let next = renewal.afterARIPoll(current: e.nextAttempt, now: now, window: window, random: .random(in: 0..<1))
            if next != e.nextAttempt { moved = next }
            e.nextAttempt = next
        } counted: { _ in }
        if let moved {
            logger.info("ACME renewal moved by the CA's renewal window (ARI)", metadata: [
                "hosts": "\(entry.hosts.joined(separator: ","))", "next_renewal": "\(moved)",
            ])
        }
    }

    /// `kinds`: the challenge kinds to offer, in preference order (`AcmeChallengeKind.forOrder`).
    private func order(_ entry: Entry, acme: AcmeConfig, kinds: [AcmeChallengeKind]) async {
        let renewal = AcmeRenewal(renewBefore: acme.renewBefore.map { Int($0.components.seconds) })
        let files = AcmeStateFiles(directory: acme.stateDirectory)
        let hostList = entry.hosts.joined(separator: ",")
        logger.info("ordering ACME certificate", metadata: [
            "hosts": "\(hostList)", "renewal": "\(entry.notAfter != nil)", "challenges": "\(kinds.map(\.rawValue).joined(separator: ","))",
        ])
        do throws(AcmeError) {
            guard !kinds.isEmpty else {
                throw AcmeError("no configured challenge kind can be answered: http-01 needs an http listener, tls-alpn-01 an https listener")
            }
            try AcmeStateFiles.makeDirectory(files.certificateDirectory(entry.name))
            let account = try accountKey(files)
            let client = AcmeClient(directoryURL: acme.directory, trustCAFile: acme.ca, accountKey: account, email: acme.email, group: group)
            let key = try AcmeKey.generate()
            // A renewal names the certificate it replaces (ARI); after a failure it does not,
            // in case the CA refused that (e.g. already replaced).
            let replacing = entry.notAfter != nil && entry.failures == 0 ? AcmeStateFiles.read(files.chain(entry.name)) : nil
            let issued = try await client.obtain(
                hosts: entry.hosts, certificateKey: key, kinds: kinds, sink: selection.board, replacing: replacing)
            try files.savePair(entry.name, key: key, chainPEM: issued.chainPEM)
            try AcmeStateFiles.write(AcmeFailureRecord(directory: acme.directory).text, to: files.state(entry.name))
            let context: TLSContext
            do {
                context = try TLSContext.server(
                    certificateChain: files.chain(entry.name), privateKey: files.key(entry.name), alpn: PublicCertificates.alpn)
            } catch {
                throw AcmeError("the issued certificate does not load: \(error)")
            }
            selection.store.install(context, hosts: entry.hosts)
            let window = await client.renewalWindow(certificatePEM: issued.chainPEM)
            let next = renewal.afterIssuance(
                now: Self.now(), notBefore: issued.notBefore, notAfter: issued.notAfter, window: window, random: .random(in: 0..<1))
            if renewal.ignoresRenewBefore(notBefore: issued.notBefore, notAfter: issued.notAfter) {
                logger.warning("[acme] renew_before is not shorter than the certificate's lifetime; renewing at two thirds of it instead", metadata: [
                    "hosts": "\(hostList)", "lifetime": "\(issued.notAfter - issued.notBefore)s",
                ])
            }
            update(entry.hosts) { e in
                e.issuer = issued.issuer
                e.notBefore = issued.notBefore
                e.notAfter = issued.notAfter
                e.nextAttempt = next
                e.failures = 0
                e.lastError = nil
                e.lastFailedKind = nil
                e.ariCheckedAt = Self.now()
            } counted: { $0.issued += 1 }
            logger.notice("ACME certificate issued", metadata: .event(.certificateIssued, [
                "hosts": "\(hostList)", "issuer": "\(issued.issuer)", "not_after": "\(issued.notAfter)", "next_renewal": "\(next)",
            ]))
        } catch {
            // stop() cancelled the order (shutdown): not a failure of the CA or the config.
            if Task.isCancelled {
                logger.info("ACME order abandoned: the gateway is stopping", metadata: ["hosts": "\(hostList)"])
                return
            }
            let now = Self.now()
            var retry = now
            var record: AcmeFailureRecord?
            update(entry.hosts) { e in
                e.failures += 1
                e.lastError = error.message
                if AcmeChallengeKind.isValidationFailure(problemType: error.problemType) || error.challenge != nil {
                    e.lastFailedKind = error.challenge ?? kinds.first
                }
                e.lastFailure = now
                e.nextAttempt = now + renewal.retryDelay(
                    failures: e.failures, random: .random(in: 0..<1), retryAfter: error.retryAfter, problemType: error.problemType)
                retry = e.nextAttempt
                record = AcmeFailureRecord(
                    directory: acme.directory, failures: e.failures, nextAttempt: e.nextAttempt, lastFailure: now, lastError: error.message)
            } counted: { $0.failed += 1 }
            // Kept across restarts, so a restart does not cut the backoff short.
            if let record {
                do throws(AcmeError) {
                    try AcmeStateFiles.makeDirectory(files.certificateDirectory(entry.name))
                    try AcmeStateFiles.write(record.text, to: files.state(entry.name))
                } catch {
                    logger.warning("cannot save the ACME failure state", metadata: ["hosts": "\(hostList)", "error": "\(error.message)"])
                }
            }
            logger.error("ACME order failed; the current certificate (if any) stays", metadata: .event(.certificateFailed, [
                "hosts": "\(hostList)", "error": "\(error.message)", "retry_at": "\(retry)",
            ]))
        }
    }

    private func update(_ hosts: [String], _ change: (inout Entry) -> Void, counted: (inout State) -> Void) {
        state.withLockedValue { s in
            counted(&s)
            if let i = s.entries.firstIndex(where: { $0.hosts == hosts }) { change(&s.entries[i]) }
        }
    }

    /// The account key: reused, so the account (and the CA's rate limits) stays the same.
    private func accountKey(_ files: AcmeStateFiles) throws(AcmeError) -> AcmeKey {
        if access(files.accountKey, F_OK) == 0 { return try AcmeKey.load(pemFile: files.accountKey) }
        let key = try AcmeKey.generate()
        try key.save(pemFile: files.accountKey)
        return key
    }

    struct Snapshot: Sendable {
        var entries: [Entry]
        var issued: Int
        var failed: Int
    }

    var snapshot: Snapshot {
        state.withLockedValue { Snapshot(entries: $0.entries, issued: $0.issued, failed: $0.failed) }
    }
}
