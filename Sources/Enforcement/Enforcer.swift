import NE2000Model
import VPIOMonitor

/// What the host learned from the agent's ring at a DMA start.
public enum IntentCheck: Equatable, Sendable {
    /// The intent was in the ring and agrees with the access and the readable registers.
    case verified
    /// No agent ring is registered.
    case agentAbsent
    /// The ring holds no intent for this DMA start: the agent is gone, late, or blind here.
    case missing
    /// An intent was there but disagrees (kind, start, or a count the host can check).
    case mismatch(String)
}

/// Enforces one guest's mode at its DMA starts, and walks the fallback ladder: cooperative →
/// vmm-model when the agent's report is missing or wrong, vmm-model → emulated when that model
/// also sees a violation; back to cooperative only after the agent re-registered and a run of its
/// intents verified again, and never twice within `returnSpacing` accesses. Pure: fed decisions,
/// it answers allow or deny and keeps the record.
public final class Enforcer {
    public struct ModeSwitch: Codable, Equatable, Sendable {
        /// Device accesses served before the switch.
        public var access: Int
        public var from: Mode
        public var to: Mode
        public var reason: String

        public init(access: Int, from: Mode, to: Mode, reason: String) {
            self.access = access
            self.from = from
            self.to = to
            self.reason = reason
        }
    }

    public struct Violation: Codable, Equatable, Sendable {
        public var access: Int
        public var mode: Mode
        public var kind: DMAKind
        public var start: UInt16
        public var count: UInt16?
        public var reason: String
    }

    public struct Report: Codable, Equatable, Sendable {
        public var configured: Mode
        public var current: Mode
        public var dmaStarts = 0
        public var allowed = 0
        public var denied = 0
        public var switches: [ModeSwitch] = []
        /// The first `Enforcer.keptViolations` violations; `denied` counts them all.
        public var violations: [Violation] = []
        public var returnsToCooperative = 0
    }

    /// Verified intents in a row, after a re-registration, before cooperative mode comes back.
    public static let verifiedRunToReturn = 64
    /// Accesses that must pass between two returns to cooperative mode (the rate limit).
    public static let returnSpacing = 20_000
    static let keptViolations = 64

    public private(set) var report: Report
    private var verifiedRun = 0
    private var registrationsAtFallback = 0
    private var lastReturn = -returnSpacing

    public init(mode: Mode) {
        report = Report(configured: mode, current: mode)
    }

    public var current: Mode { report.current }

    /// Judges a DMA start at access number `access`. `decisions` are every mode's model decisions
    /// on it (the emulated monitor sees every access, so its decision marks a DMA start);
    /// `registrations` counts the agent's registrations so far. Returns whether the DMA may start.
    public func judge(access: Int, decisions: ModeDecisions, intent: IntentCheck, registrations: Int) -> Bool {
        guard let reference = decisions.emulated else { return true }
        report.dmaStarts += 1
        considerReturn(access: access, intent: intent, registrations: registrations)
        var verdict: Verdict
        switch report.current {
        case .passthrough:
            verdict = .allowed
        case .emulated:
            verdict = reference.verdict
        case .vmmModel:
            verdict = decisions.vmmModel?.verdict ?? reference.verdict
        case .cooperative:
            if intent != .verified {
                fallBack(access: access, to: .vmmModel, reason: "agent report: \(describe(intent))", registrations: registrations)
                verdict = decisions.vmmModel?.verdict ?? reference.verdict
            } else {
                verdict = decisions.cooperative?.verdict ?? .denied(.notProgrammed)
            }
        }
        guard case let .denied(reason) = verdict else {
            report.allowed += 1
            return true
        }
        report.denied += 1
        if report.violations.count < Self.keptViolations {
            report.violations.append(Violation(access: access, mode: report.current, kind: reference.kind,
                                               start: reference.start, count: reference.count, reason: reason.rawValue))
        }
        if report.current == .vmmModel {
            fallBack(access: access, to: .emulated, reason: "vmm-model saw a violation (\(reason.rawValue))", registrations: registrations)
        }
        return false
    }

    private func fallBack(access: Int, to mode: Mode, reason: String, registrations: Int) {
        report.switches.append(ModeSwitch(access: access, from: report.current, to: mode, reason: reason))
        report.current = mode
        registrationsAtFallback = registrations
        verifiedRun = 0
    }

    /// The way back: only from vmm-model, only when cooperative was asked for, after the agent
    /// registered again and `verifiedRunToReturn` intents in a row checked out.
    private func considerReturn(access: Int, intent: IntentCheck, registrations: Int) {
        guard report.configured == .cooperative, report.current == .vmmModel else { return }
        guard registrations > registrationsAtFallback, intent == .verified else {
            verifiedRun = 0
            return
        }
        verifiedRun += 1
        guard verifiedRun >= Self.verifiedRunToReturn, access - lastReturn >= Self.returnSpacing else { return }
        report.switches.append(ModeSwitch(access: access, from: .vmmModel, to: .cooperative,
                                          reason: "agent re-registered and \(verifiedRun) intents verified"))
        report.current = .cooperative
        report.returnsToCooperative += 1
        lastReturn = access
        verifiedRun = 0
    }

    private func describe(_ intent: IntentCheck) -> String {
        switch intent {
        case .verified: "verified"
        case .agentAbsent: "no agent registered"
        case .missing: "intent missing"
        case let .mismatch(what): "intent mismatch (\(what))"
        }
    }
}

/// The value a denied DMA-starting command is replaced with: the same page select and start/stop
/// bits, but remote DMA set to "abort/complete" and no transmit, so the device starts nothing and
/// the driver carries on (a remote transfer reads stale data; a transmit times out and is redone).
public func deniedCommand(_ value: UInt32) -> UInt32 {
    (value & ~0x3C) | 0x20
}

/// Device writes (BAR0 offset, byte) the host makes before a denied command reaches the device.
/// Masking the command is not enough: the DP8390 moves data-port bytes at RSAR for as long as RBCR
/// is non-zero whatever CR.RD says (so does QEMU's ne2000), so the denied programming would still
/// be carried out through the untrapped data port. On page 0 (the denied command with its page
/// bits cleared) RSAR is moved to the start of the grant, where a data-port read returns only the
/// guest's own memory, and RBCR is zeroed, so data-port writes are dropped. The denied command
/// itself follows and restores the guest's page select.
public func disarmingWrites(deniedCommand command: UInt32, grant: BufferGrant = .wholeDevice) -> [(offset: UInt64, value: UInt32)] {
    let start = UInt32(grant.owned.lowerBound)
    return [(0x00, command & 0x3F), (0x08, start & 0xFF), (0x09, start >> 8 & 0xFF), (0x0A, 0), (0x0B, 0)]
}
