import AgentLink
import DeviceBus
import DeviceSharing
import Enforcement
import Logging
import NE2000Model
import VPIOMonitor
import VPIOProtocol

/// What a shared device's switcher says about one guest's accesses, and hears of them.
public protocol GuestTurn: AnyObject {
    /// What the host knows of the access about to be judged: whether it waited for the device, whether
    /// the host wants the owner's next switch point, whether the host answers it itself.
    func circumstances(of access: BusAccess) -> AccessCircumstances
    /// A CR write the enforced mode trapped, after it reached the device.
    func commandTrapped(_ value: UInt8)
}

/// Every device access passes here: the ledger's monitors see it, and each DMA a CR write starts is
/// judged by the enforced mode — with the agent's intent checked first in cooperative mode — while the
/// guest's vCPU waits in that write. The gate performs the write on the device itself, in steps:
/// 1. the registers a real host can read (run state, PSTART, PSTOP, TPSR, TCR) are read first;
/// 2. a remote DMA start goes to the device without TXP, then CRDA — now loaded from RSAR, with no data
///    moved yet — is read and the start judged; a denied one is ended at once (`DenialActions`);
/// 3. a transmit is judged before TXP reaches the device (it runs within the write); a denied one aborts.
/// Received frames are judged before the device stores them (`ReceiveGate`). In on-demand mode all of
/// this happens only while its trap is armed (the ledger's `onDemandArmed`); disarmed, a CR write goes
/// to the device as it is, as it would without a trap.
public final class DMAGate {
    let ledger: GuestLedger
    let agent: AgentMonitor
    let enforcer: Enforcer
    let logger: Logger
    let window: RegisterWindow
    let reduced: ReducedModel
    let turn: GuestTurn?
    private var deniedLog = LogThrottle()

    /// The grant is the ledger's: the reduced model here and the ledger's full models judge against one.
    /// `turn` is the guest's side of a shared device's switcher (nil: the guest has the device to itself).
    public init(ledger: GuestLedger, agent: AgentMonitor, enforcer: Enforcer, device: BusDevice, logger: Logger,
                turn: GuestTurn? = nil) {
        self.turn = turn
        self.ledger = ledger
        self.agent = agent
        self.enforcer = enforcer
        self.window = RegisterWindow(device: device)
        self.reduced = ReducedModel(grant: ledger.grant)
        self.logger = logger
        agent.capability.setEnforcedMode(Self.statusCode(enforcer.current))
    }

    /// PCIEndpoint's access hook: observes reads; performs writes itself (returns nil: absorbed).
    public func filter(_ access: BusAccess) -> UInt32? {
        agent.count(access)
        let decisions = ledger.observe(access, circumstances: turn?.circumstances(of: access) ?? .alone)
        guard access.direction == .write else { return access.value }
        let value = UInt8(truncatingIfNeeded: access.value)
        let isCommand = access.region == 0 && BAR0.decode(offset: access.offset, width: access.width) == .register(CR.offset)
        let trapped = isCommand && (enforcer.current != .onDemand || ledger.monitors.onDemandArmed)
        if trapped, ReducedModel.mayStartDMA(command: value) {
            command(value, decisions: decisions)
        } else {
            window.device.write(region: access.region, offset: access.offset, width: access.width, value: access.value)
        }
        if trapped { turn?.commandTrapped(value) }
        return nil
    }

    /// A CR write that may start a remote DMA, a transmit, or both. What starts is what the device will
    /// do (its run state read back); the full model's decision is the reference each mode is judged
    /// against, and the reduced model's stands in where the reference saw no start.
    private func command(_ value: UInt8, decisions: ModeDecisions) {
        let before = window.valuesBeforeCommand()
        let effect = CommandEffect(command: value, wasRunning: before.running)
        if effect.startsRemote != nil {
            window.write(CR.offset, effect.startsTransmit ? value & ~CR.transmit : value)
            var readback = before
            readback.crda = window.currentRemoteAddress()
            let ours = reduced.decide(command: value & ~CR.transmit, readback: readback).remote
            if !judge(ours, reference: decisions.emulated.remote, vmmModel: decisions.vmmModel.remote, intentStart: readback.crda),
               let kind = effect.startsRemote {
                DenialActions.endRemote(kind: kind, command: value, window)
            }
        }
        guard effect.startsTransmit else {
            if effect.startsRemote == nil { window.write(CR.offset, value) }
            return
        }
        let ours = reduced.decide(command: value, readback: before).transmit
        // After a remote part, RD = 000 keeps that DMA as the single write would have left it.
        let transmitCommand = effect.startsRemote == nil ? value : value & ~CR.remoteMask
        if judge(ours, reference: decisions.emulated.transmit, vmmModel: decisions.vmmModel.transmit,
                 intentStart: UInt16(before.tpsr) << 8) {
            window.write(CR.offset, transmitCommand)
        } else {
            DenialActions.abortTransmit(command: transmitCommand, transmitPage: before.tpsr, window)
        }
    }

    private func judge(_ ours: DMADecision?, reference: DMADecision?, vmmModel: DMADecision?, intentStart: UInt16) -> Bool {
        guard let reference = reference ?? ours else { return true }
        return judge(StartDecisions(reference: reference, vmmModel: vmmModel, cooperative: ours), intentStart: intentStart)
    }

    /// One start through the agent check and the enforcer; logs and reports the outcome.
    private func judge(_ start: StartDecisions, intentStart: UInt16) -> Bool {
        // on-demand's judgement never rests on the agent's word: its ring is not read.
        let intent = enforcer.report.configured == .onDemand ? .agentAbsent : check(start.reference.kind, start: intentStart)
        let switches = enforcer.report.switches.count
        let allowed = enforcer.judge(access: ledger.accesses, start: start, intent: intent,
                                     ringGeneration: agent.channel.ringGeneration)
        if enforcer.report.switches.count != switches, let change = enforcer.report.switches.last {
            // Every boot leaves cooperative until the agent registers, and returns once it has: expected,
            // so not warnings. A fallback is.
            let expected = change.kind != .fallback
            logger.log(level: expected ? .notice : .warning, "enforced mode changed", metadata: [
                "from": "\(change.from.rawValue)", "to": "\(change.to.rawValue)", "reason": "\(change.reason)",
                "access": "\(change.access)"])
            agent.capability.setEnforcedMode(Self.statusCode(change.to))
            agent.capability.setFallback(change.to != enforcer.report.configured)
        }
        if allowed {
            if start.reference.isAnomaly { agent.capability.recordAnomaly() }
            return true
        }
        agent.capability.recordViolation()
        if deniedLog.admit() {
            logger.warning("DMA denied", metadata: [
                "kind": "\(start.reference.kind.rawValue)", "start": "0x\(String(start.reference.start, radix: 16))",
                "count": "\(start.reference.count.map(String.init) ?? "?")", "mode": "\(enforcer.current.rawValue)",
                "suppressed": "\(deniedLog.suppressed)"])
        }
        return false
    }

    /// The intent check against the start the device's readable registers show, then the agent's own
    /// counters against what the host served.
    private func check(_ kind: DMAKind, start: UInt16) -> IntentCheck {
        guard agent.channel.isRegistered, let intentKind = IntentKind(kind) else { return .agentAbsent }
        switch agent.verify(kind: intentKind, start: UInt32(start)) {
        case .hit?:
            if let problem = agent.inconsistency() { return .inconsistent(problem) }
            return .verified
        case let .miss(expected, next)?: return .missing(agent.describeMiss(expected: expected, next: next))
        case nil: return .missing("guest memory unmapped")
        case let .mismatch(expected, found, at, count)?:
            return .mismatch("expected \(expected) at 0x\(String(start, radix: 16)), "
                             + "ring says \(found) at 0x\(String(at, radix: 16)) count \(count)")
        }
    }

    /// The capability's mode field: 0 emulated, 1 vmm-model, 2 cooperative, 3 passthrough, 4 on-demand.
    static func statusCode(_ mode: Mode) -> UInt32 {
        switch mode {
        case .emulated: 0
        case .vmmModel: 1
        case .cooperative: 2
        case .passthrough: 3
        case .onDemand: 4
        }
    }
}

/// Admits the first `burst` events, then one per `every`: a guest that provokes denials cannot fill the log.
struct LogThrottle {
    static let burst = 16
    static let every = 1024
    private(set) var seen = 0
    private(set) var suppressed = 0

    mutating func admit() -> Bool {
        seen += 1
        if seen <= Self.burst || seen % Self.every == 0 { return true }
        suppressed += 1
        return false
    }
}
