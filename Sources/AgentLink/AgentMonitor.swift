import DeviceBus
import VPIOProtocol

/// Watches the guest's device accesses against what the agent reports: at every DMA start the
/// host asks it to verify, it reads the ring and checks that the intent is already there, and compares the
/// accesses the agent's probes saw with the accesses the host served since registration. The
/// comparison is exact at trapped accesses: the vCPU is stalled inside the access, and the probe
/// counted it before the instruction ran. The agent is checked, not trusted: `inconsistency()` says
/// when its own counters contradict the host or themselves.
public final class AgentMonitor {
    public struct Counters: Codable, Equatable, Sendable {
        public var intents = IntentMatcher.Counters()
        /// Host-served and agent-seen accesses since registration, at the last DMA start.
        public var hostAccessesSinceRegistration: UInt64 = 0
        public var agentAccessesSinceRegistration: UInt64 = 0
        /// DMA starts at which the two counts differed.
        public var accessCountMismatches = 0
        /// At the first of those: the accesses the host served since the previous DMA start, by
        /// region offset, direction and width ("0x10 r4 ×80"), where the agent's probes missed some.
        public var firstMismatchAccesses: String?
    }

    public let capability: AgentCapability
    public private(set) var counters = Counters()
    private let matcher = IntentMatcher()
    private var hostAccesses: UInt64 = 0
    /// The accesses served since the last DMA start, counted by kind (bounded: at most 256 kinds).
    private var sinceLastStart: [AccessKind: Int] = [:]
    private var baseline: Baseline?
    /// The agent's header as the last `verify` read it (nil: unreadable, or none since registration).
    private var lastHeader: RingHeader?
    private let memory: () -> GuestMemory?

    /// What the ring and the host had counted when the agent registered.
    private struct Baseline {
        var hostAccesses: UInt64
        var header: RingHeader
        var sequenceWraps: Int
        var indexWraps: Int
    }

    /// - Parameter memory: the guest RAM of the current connection (nil while none).
    public init(capability: AgentCapability, memory: @escaping () -> GuestMemory?) {
        self.capability = capability
        self.memory = memory
        capability.onRegistered = { [unowned self] header in
            baseline = Baseline(hostAccesses: hostAccesses, header: header, sequenceWraps: channel.counters.sequenceWraps,
                                indexWraps: matcher.counters.indexWraps)
            lastHeader = nil
            sinceLastStart.removeAll()
            matcher.reset(base: header.intentsWritten)
        }
    }

    public var channel: AgentChannel { capability.channel }

    /// Counts one device access (every BAR access, in order). Compared with the agent's count
    /// modulo 2^64, as that one is the guest's number.
    public func count(_ access: BusAccess) {
        hostAccesses &+= 1
        let key = AccessKind(offset: access.offset, read: access.direction == .read, width: access.width.rawValue)
        if sinceLastStart[key] != nil || sinceLastStart.count < 256 { sinceLastStart[key, default: 0] += 1 }
    }

    /// A DMA of `kind` starts at `start` for `count` bytes (as the host's readable registers show them;
    /// nil where it cannot tell): reads the ring, matches the intent, and compares the access counts.
    public func verify(kind: IntentKind, start: UInt32?, count: UInt32? = nil) -> IntentMatcher.Outcome? {
        guard channel.isRegistered, let memory = memory() else { return nil }
        matcher.ingest(channel.poll(memory: memory))
        let outcome = matcher.dmaStarted(kind: kind, start: start, count: count)
        counters.intents = matcher.counters
        lastHeader = channel.header(memory: memory)
        if let baseline, let lastHeader {
            counters.hostAccessesSinceRegistration = hostAccesses &- baseline.hostAccesses
            counters.agentAccessesSinceRegistration = lastHeader.accessesSeen &- baseline.header.accessesSeen
            if counters.hostAccessesSinceRegistration != counters.agentAccessesSinceRegistration {
                counters.accessCountMismatches += 1
                if counters.firstMismatchAccesses == nil {
                    counters.firstMismatchAccesses = sinceLastStart.map { "\($0.key.label) ×\($0.value)" }.sorted()
                        .joined(separator: ", ")
                }
            }
        }
        sinceLastStart.removeAll(keepingCapacity: true)
        return outcome
    }

    /// Why the registered agent's own reports contradict the host or themselves, as of the last
    /// `verify` (the enforcement asks right after it, at each DMA start); nil while they agree.
    /// Only changes since registration count: an honest agent starts with a refused `.cold` site
    /// (`unseen_sites` 1) and maybe events lost before it registered.
    public func inconsistency() -> String? {
        guard channel.isRegistered, let baseline, let lastHeader else { return nil }
        let findings = [accessCountFinding(), stateFinding(), unseenSitesFinding(baseline, lastHeader)] + wrapFindings(baseline)
        let found = findings.compactMap { $0 }
        return found.isEmpty ? nil : found.joined(separator: "; ")
    }

    /// What the ring showed at a miss, for the record of why cooperative mode was left: the index the
    /// host waited for, what the ring held instead, the agent's own counts and what the reader lost.
    public func describeMiss(expected: UInt64, next: UInt64?) -> String {
        let held = next.map { "ring's next intent is #\($0)" } ?? "no later intent in the ring"
        let agent = lastHeader.map { "agent wrote \($0.intentsWritten &- (baseline?.header.intentsWritten ?? 0)) intents "
            + "and saw \(counters.agentAccessesSinceRegistration) accesses since registration" } ?? "ring header unreadable"
        let reader = channel.counters
        return "no intent #\(expected) (\(held); \(agent), host served \(counters.hostAccessesSinceRegistration); "
            + "host read \(reader.recordsRead) records, lost \(reader.recordsLost), malformed \(reader.recordsMalformed), "
            + "unreadable \(reader.unreadable))"
    }

    private func accessCountFinding() -> String? {
        let host = counters.hostAccessesSinceRegistration, agent = counters.agentAccessesSinceRegistration
        return host == agent ? nil : "agent saw \(agent) accesses since registration, host served \(host)"
    }

    private func stateFinding() -> String? {
        guard let first = channel.firstState, let last = channel.lastState else { return nil }
        if last.unsure { return "agent's state report says unsure" }
        return last.eventsLost == first.eventsLost ? nil : "agent's eventsLost went \(first.eventsLost) → \(last.eventsLost)"
    }

    private func unseenSitesFinding(_ baseline: Baseline, _ header: RingHeader) -> String? {
        let before = baseline.header.unseenSites
        return header.unseenSites == before ? nil : "unseen_sites went \(before) → \(header.unseenSites)"
    }

    private func wrapFindings(_ baseline: Baseline) -> [String?] {
        [channel.counters.sequenceWraps == baseline.sequenceWraps ? nil : "the ring's claim numbers wrapped past 2^64",
         matcher.counters.indexWraps == baseline.indexWraps ? nil : "intent indexes wrapped past 2^64"]
    }
}

/// What `AgentMonitor` counts accesses by: formatted only when a mismatch is reported, since it is
/// counted at every device access.
private struct AccessKind: Hashable {
    let offset: UInt64
    let read: Bool
    let width: Int

    /// "0x10 r1": offset, direction, width in bytes.
    var label: String { "0x\(String(offset, radix: 16)) \(read ? "r" : "w")\(width)" }
}
