import AgentLink
import DeviceBus
import Logging
import RTL8139
import RTL8139Model
import VPIOProtocol

/// The seed's cross-check for the RTL8139: at each DMA start the host finds, the agent's intent must
/// already be in the ring, in the order the host finds them (a write's transmits by descriptor, then
/// the ring it leaves the receiver on), with the same guest-physical start and byte count; and the
/// agent's counters must agree with the host's. The starts are what the cooperative host examines: the
/// device's readable registers with the write merged in.
///
/// The verdict never rests on it: every mode that checks judges from registers it trusts (the device's,
/// or vmm-model's own model), so a missing, wrong or lying agent costs no safety. What it costs the
/// agent is being reported: a warning, the capability's fallback bit for the guest to read, counters.
/// After the host denies a write, the agent's copy of what it wrote and the device's registers differ,
/// so a denial is usually followed by mismatches: the agent saw the guest write, not the host drop it.
public final class RTL8139IntentCheck {
    public struct Counters: Codable, Equatable, Sendable {
        /// DMA starts checked against the ring (only while an agent is registered).
        public var starts = 0
        /// Starts where the agent's word was missing, different, or its counters contradicted the host.
        public var findings = 0
        public var firstFinding: String?
        public var intents = IntentMatcher.Counters()
        public var accessCountMismatches = 0
    }

    let agent: AgentMonitor
    let logger: Logger
    public private(set) var counters = Counters()

    init(agent: AgentMonitor, logger: Logger) {
        self.agent = agent
        self.logger = logger
    }

    /// Every access, in order: the host's side of the access count.
    func count(_ access: BusAccess) { agent.count(access) }

    /// A write before it reaches the device, whose registers are `device` now: the starts it makes,
    /// each matched with the agent's intent. Writes outside the cooperative set start nothing.
    func verify(_ access: BusAccess, device: RTL8139State, check: RTL8139DMACheck) {
        guard agent.channel.isRegistered, access.region == 0,
              RTL8139HookSet.traps(offset: access.offset, width: access.width, direction: access.direction) else { return }
        let examination = check.examine(offset: access.offset, width: access.width, value: access.value, device: device)
        guard examination.checks > 0 else { return }
        var next = device
        next.applySteeringWrite(offset: access.offset, width: access.width, value: access.value)
        for index in examination.transmits {
            let size = next.tsd[index] & RTL8139TransmitStatus.sizeMask
            report(agent.verify(kind: .busTransmit, start: next.tsad[index], count: size), "TSD\(index)")
        }
        if let ring = examination.ring {
            report(agent.verify(kind: .receiveRing, start: UInt32(truncatingIfNeeded: ring.lowerBound),
                                count: UInt32(truncatingIfNeeded: ring.upperBound - ring.lowerBound)), "ring")
        }
        counters.intents = agent.counters.intents
        counters.accessCountMismatches = agent.counters.accessCountMismatches
    }

    private func report(_ outcome: IntentMatcher.Outcome?, _ start: String) {
        counters.starts += 1
        let finding: String? = switch outcome {
        case .hit?: agent.inconsistency()
        case let .miss(expected, next)?: agent.describeMiss(expected: expected, next: next)
        case let .mismatch(expected, found, at, count)?:
            "expected \(expected), ring says \(found) at 0x\(String(at, radix: 16)) count \(count)"
        case nil: "guest memory unmapped"
        }
        guard let finding else { return }
        counters.findings += 1
        guard counters.firstFinding == nil else { return }
        counters.firstFinding = "\(start): \(finding)"
        agent.capability.setFallback(true)
        logger.warning("agent's report contradicts the host; the host judges from the device's registers as before",
                       metadata: ["start": "\(start)", "finding": "\(finding)"])
    }
}
