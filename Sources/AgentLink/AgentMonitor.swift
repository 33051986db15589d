import DeviceBus
import VPIOProtocol

/// Watches the guest's device accesses against what the agent reports: at every DMA start the
/// host asks it to verify, it reads the ring and checks that the intent is already there, and compares the
/// accesses the agent's probes saw with the accesses the host served since registration. The
/// comparison is exact at trapped accesses: the vCPU is stalled inside the access, and the probe
/// counted it before the instruction ran.
public final class AgentMonitor {
    public struct Counters: Codable, Equatable, Sendable {
        public var intents = IntentMatcher.Counters()
        /// Host-served and agent-seen accesses since registration, at the last DMA start.
        public var hostAccessesSinceRegistration: UInt64 = 0
        public var agentAccessesSinceRegistration: UInt64 = 0
        /// DMA starts at which the two counts differed.
        public var accessCountMismatches = 0
    }

    public let capability: AgentCapability
    public private(set) var counters = Counters()
    private let matcher = IntentMatcher()
    private var hostAccesses: UInt64 = 0
    private var baseline: (host: UInt64, agent: UInt64)?
    private let memory: () -> GuestMemory?

    /// - Parameter memory: the guest RAM of the current connection (nil while none).
    public init(capability: AgentCapability, memory: @escaping () -> GuestMemory?) {
        self.capability = capability
        self.memory = memory
        capability.onRegistered = { [unowned self] header in
            baseline = (hostAccesses, header.accessesSeen)
            matcher.reset(base: header.intentsWritten)
        }
    }

    public var channel: AgentChannel { capability.channel }

    /// Counts one device access (every BAR access, in order).
    public func count(_ access: BusAccess) {
        hostAccesses += 1
    }

    /// A DMA of `kind` starts at `start` (as the host's readable registers show it; nil if it
    /// cannot tell): reads the ring, matches the intent, and compares the access counts.
    public func verify(kind: DMAKind, start: UInt32?) -> IntentMatcher.Outcome? {
        guard channel.isRegistered, let memory = memory() else { return nil }
        matcher.ingest(channel.poll(memory: memory))
        let outcome = matcher.dmaStarted(kind: kind, start: start)
        counters.intents = matcher.counters
        if let baseline, let header = channel.header(memory: memory) {
            counters.hostAccessesSinceRegistration = hostAccesses - baseline.host
            counters.agentAccessesSinceRegistration = header.accessesSeen &- baseline.agent
            if counters.hostAccessesSinceRegistration != counters.agentAccessesSinceRegistration {
                counters.accessCountMismatches += 1
            }
        }
        return outcome
    }
}
