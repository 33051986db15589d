import AgentLink
import DeviceBus
import Enforcement
import Logging
import NE2000Model
import VPIOMonitor
import VPIOProtocol

/// Every device access passes here: the ledger's monitors see it, and a DMA start is judged by the
/// enforced mode — with the agent's intent checked first in cooperative mode — before the device
/// gets the command. A denied start reaches the device with its start bits masked, after the
/// host disarmed the remote-DMA registers it programmed (`disarmingWrites`).
final class DMAGate {
    let ledger: GuestLedger
    let agent: AgentMonitor
    let enforcer: Enforcer
    let logger: Logger
    /// The device itself, for the host's own writes (not guest accesses: no monitor sees them).
    let device: BusDevice

    init(ledger: GuestLedger, agent: AgentMonitor, enforcer: Enforcer, device: BusDevice, logger: Logger) {
        self.ledger = ledger
        self.agent = agent
        self.enforcer = enforcer
        self.device = device
        self.logger = logger
        agent.capability.setEnforcedMode(Self.statusCode(enforcer.current))
    }

    func filter(_ access: BusAccess) -> UInt32? {
        agent.count(access)
        let decisions = ledger.observe(access)
        guard access.direction == .write, let start = decisions.emulated else { return access.value }
        let intent = check(start, readback: decisions.cooperative?.start)
        let switches = enforcer.report.switches.count
        let allowed = enforcer.judge(access: ledger.accesses, decisions: decisions, intent: intent,
                                     registrations: agent.channel.counters.registrations)
        if enforcer.report.switches.count != switches, let change = enforcer.report.switches.last {
            logger.warning("enforced mode changed", metadata: [
                "from": "\(change.from.rawValue)", "to": "\(change.to.rawValue)", "reason": "\(change.reason)",
                "access": "\(change.access)"])
            agent.capability.setEnforcedMode(Self.statusCode(change.to))
            agent.capability.setFallback(change.to != enforcer.report.configured)
        }
        guard allowed else {
            agent.capability.recordViolation()
            logger.warning("DMA denied", metadata: [
                "kind": "\(start.kind.rawValue)", "start": "0x\(String(start.start, radix: 16))",
                "count": "\(start.count.map(String.init) ?? "?")", "mode": "\(enforcer.current.rawValue)"])
            let denied = deniedCommand(access.value)
            for (offset, value) in disarmingWrites(deniedCommand: denied) {
                device.write(region: access.region, offset: offset, width: .byte, value: value)
            }
            return denied
        }
        return access.value
    }

    /// The intent check, against the start address the device's readable registers show (CRDA,
    /// or TPSR for a transmit: what the reduced model read).
    private func check(_ start: DMADecision, readback: UInt16?) -> IntentCheck {
        guard agent.channel.isRegistered else { return .agentAbsent }
        switch agent.verify(kind: Self.wireKind(start.kind), start: readback.map(UInt32.init)) {
        case .hit?: return .verified
        case .miss?, nil: return .missing
        case let .mismatch(expected, found, at, count)?:
            return .mismatch("expected \(expected) at \(readback.map { "0x" + String($0, radix: 16) } ?? "?"), "
                             + "ring says \(found) at 0x\(String(at, radix: 16)) count \(count)")
        }
    }

    static func wireKind(_ kind: NE2000Model.DMAKind) -> VPIOProtocol.DMAKind {
        switch kind {
        case .remoteRead: .remoteRead
        case .remoteWrite: .remoteWrite
        case .transmit: .transmit
        }
    }

    /// The capability's mode field: 0 emulated, 1 vmm-model, 2 cooperative, 3 passthrough.
    static func statusCode(_ mode: Mode) -> UInt32 {
        switch mode {
        case .emulated: 0
        case .vmmModel: 1
        case .cooperative: 2
        case .passthrough: 3
        }
    }
}
