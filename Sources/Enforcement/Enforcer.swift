import NE2000Model
import VPIOMonitor

/// What the host learned from the agent's ring at a DMA start.
public enum IntentCheck: Equatable, Sendable {
    /// The intent was in the ring and agrees with the access and the readable registers.
    case verified
    /// No agent ring is registered.
    case agentAbsent
    /// The ring holds no intent for this DMA start: the agent is gone, late, or blind here (what the
    /// ring showed instead).
    case missing(String)
    /// An intent was there but disagrees (kind, start, or a count the host can check).
    case mismatch(String)
    /// The agent's own counters contradict what the host served (accesses it did not see, an unsure
    /// model, lost events): its report cannot be relied on, as if the intent were missing.
    case inconsistent(String)
}

extension IntentCheck {
    /// The kind of outcome, without the details: what the enforcer's counts are keyed by.
    public var category: String {
        switch self {
        case .verified: "verified"
        case .agentAbsent: "no agent registered"
        case .missing: "intent missing"
        case .mismatch: "intent mismatch"
        case .inconsistent: "agent counters inconsistent"
        }
    }
}

/// One DMA start as each mode's model judged it. `reference` is the emulated full model's decision
/// (it sees every access, so it marks every start); the others are nil where that mode's hook set did
/// not trap the access.
public struct StartDecisions: Sendable, Equatable {
    public var reference: DMADecision
    public var vmmModel: DMADecision?
    public var cooperative: DMADecision?

    public init(reference: DMADecision, vmmModel: DMADecision?, cooperative: DMADecision?) {
        self.reference = reference
        self.vmmModel = vmmModel
        self.cooperative = cooperative
    }
}

/// Enforces one guest's mode at its DMA starts, and walks the fallback ladder: cooperative →
/// vmm-model when the agent's report is missing or wrong, vmm-model → emulated when that model
/// also sees a violation; back to cooperative only after the agent registered a new ring and a run of
/// its intents verified again, and never twice within `returnSpacing` accesses. While no agent is
/// registered at all (before it starts, after it unregistered) cooperative has no report to judge by:
/// vmm-model stands in, which is not a fallback, and cooperative resumes at the first verified intent
/// once one registers (rate-limited alike). Pure: fed decisions, it answers allow or deny and keeps the record.
public final class Enforcer {
    public struct ModeSwitch: Codable, Equatable, Sendable {
        public enum Kind: String, Codable, Sendable {
            /// Cooperative left because no agent is registered: vmm-model stands in until one does.
            case awaitingAgent = "awaiting agent"
            /// Left because the agent's report was missing, wrong or inconsistent, or a model saw a violation.
            case fallback
            /// Back to the configured mode.
            case resumed
        }

        /// Device accesses served before the switch.
        public var access: Int
        public var from: Mode
        public var to: Mode
        public var kind: Kind
        public var reason: String

        public init(access: Int, from: Mode, to: Mode, kind: Kind, reason: String) {
            self.access = access
            self.from = from
            self.to = to
            self.kind = kind
            self.reason = reason
        }
    }

    /// A DMA start whose intent check broke the run of verified intents toward cooperative mode.
    public struct RunBreak: Codable, Equatable, Sendable {
        public var access: Int
        public var verifiedBefore: Int
        public var reason: String
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
        /// Switches away from the configured mode for a wrong, missing or inconsistent report, or a violation
        /// (not for the absence of an agent).
        public var fallbacks: Int { switches.filter { $0.kind == .fallback }.count }
        /// Why a run of verified intents toward the way back broke after the agent registered a new ring,
        /// by kind of reason (what delays a return to cooperative).
        public var returnRunBreaks: [String: Int] = [:]
        /// The first and the latest of those breaks, with their details.
        public var firstReturnRunBreak: RunBreak?
        public var lastReturnRunBreak: RunBreak?
        /// Allowed DMAs a correct driver rarely makes (`DMADecision.isAnomaly`: outside SRAM, not a PROM read).
        public var anomalies = 0
        /// Received frames judged before the device stored them, and those refused.
        public var receivesJudged = 0
        public var receivesDenied = 0
    }

    /// Verified intents in a row, after a re-registration, before cooperative mode comes back.
    public static let verifiedRunToReturn = 64
    /// Accesses that must pass between two returns to cooperative mode (the rate limit).
    public static let returnSpacing = 20_000
    static let keptViolations = 64

    public private(set) var report: Report
    private var verifiedRun = 0
    private var generationAtFallback = 0
    /// Why cooperative was last left: the way back depends on it.
    private var lastDrop: ModeSwitch.Kind = .fallback
    private var lastReturn = -returnSpacing

    public init(mode: Mode) {
        report = Report(configured: mode, current: mode)
    }

    public var current: Mode { report.current }

    /// Judges one DMA start at access number `access`; `ringGeneration` counts the distinct rings the
    /// agent has registered so far. Returns whether the DMA may start.
    public func judge(access: Int, start: StartDecisions, intent: IntentCheck, ringGeneration: Int) -> Bool {
        report.dmaStarts += 1
        considerReturn(access: access, intent: intent, ringGeneration: ringGeneration)
        let verdict = verdict(access: access, start: start, intent: intent, ringGeneration: ringGeneration)
        guard case let .denied(reason) = verdict else {
            report.allowed += 1
            if start.reference.isAnomaly { report.anomalies += 1 }
            return true
        }
        report.denied += 1
        let reference = start.reference
        if report.violations.count < Self.keptViolations {
            report.violations.append(Violation(access: access, mode: report.current, kind: reference.kind,
                                               start: reference.start, count: reference.count, reason: reason.rawValue))
        }
        if report.current == .vmmModel {
            leave(access: access, to: .emulated, kind: .fallback, reason: "vmm-model saw a violation (\(reason.rawValue))",
                  ringGeneration: ringGeneration)
        }
        return false
    }

    /// Judges a received frame about to be stored (every mode but passthrough checks the ring).
    public func judgeReceive(_ decision: DMADecision) -> Bool {
        guard report.current != .passthrough else { return true }
        report.receivesJudged += 1
        if decision.verdict.isAllowed { return true }
        report.receivesDenied += 1
        return false
    }

    private func verdict(access: Int, start: StartDecisions, intent: IntentCheck, ringGeneration: Int) -> Verdict {
        switch report.current {
        case .passthrough:
            return .allowed
        case .emulated:
            return start.reference.verdict
        case .vmmModel:
            return start.vmmModel?.verdict ?? start.reference.verdict
        case .cooperative:
            guard intent == .verified else {
                let kind: ModeSwitch.Kind = intent == .agentAbsent ? .awaitingAgent : .fallback
                leave(access: access, to: .vmmModel, kind: kind, reason: "agent report: \(describe(intent))", ringGeneration: ringGeneration)
                return start.vmmModel?.verdict ?? start.reference.verdict
            }
            // The host's gate judges every start with the reduced model; without its decision (a caller
            // that has none) the reference judges.
            return start.cooperative?.verdict ?? start.reference.verdict
        case .onDemand:
            // Judged only while armed, by the reduced model from the device's registers; the agent's word
            // has no part in it, so there is nothing to fall back from.
            return start.cooperative?.verdict ?? start.reference.verdict
        }
    }

    private func leave(access: Int, to mode: Mode, kind: ModeSwitch.Kind, reason: String, ringGeneration: Int) {
        report.switches.append(ModeSwitch(access: access, from: report.current, to: mode, kind: kind, reason: reason))
        if report.current == .cooperative { lastDrop = kind }
        report.current = mode
        generationAtFallback = ringGeneration
        verifiedRun = 0
    }

    /// The way back: only from vmm-model, only when cooperative was asked for. When it was left for want
    /// of an agent, at the first verified intent; after a fallback, only once the agent registered a
    /// *new* ring (re-announcing the ring that failed proves nothing) and `verifiedRunToReturn` intents
    /// in a row checked out, counters consistent. Never twice within `returnSpacing` accesses.
    private func considerReturn(access: Int, intent: IntentCheck, ringGeneration: Int) {
        guard report.configured == .cooperative, report.current == .vmmModel else { return }
        if lastDrop == .awaitingAgent {
            guard intent == .verified, access - lastReturn >= Self.returnSpacing else { return }
            resume(access: access, reason: "an agent registered and its intent verified")
            return
        }
        guard ringGeneration > generationAtFallback else { return }
        guard intent == .verified else {
            report.returnRunBreaks[intent.category, default: 0] += 1
            let broken = RunBreak(access: access, verifiedBefore: verifiedRun, reason: describe(intent))
            if report.firstReturnRunBreak == nil { report.firstReturnRunBreak = broken }
            report.lastReturnRunBreak = broken
            verifiedRun = 0
            return
        }
        verifiedRun += 1
        guard verifiedRun >= Self.verifiedRunToReturn, access - lastReturn >= Self.returnSpacing else { return }
        resume(access: access, reason: "agent registered a new ring and \(verifiedRun) intents verified")
    }

    private func resume(access: Int, reason: String) {
        report.switches.append(ModeSwitch(access: access, from: .vmmModel, to: .cooperative, kind: .resumed, reason: reason))
        report.current = .cooperative
        report.returnsToCooperative += 1
        lastReturn = access
        verifiedRun = 0
    }

    private func describe(_ intent: IntentCheck) -> String {
        switch intent {
        case .verified: "verified"
        case .agentAbsent: "no agent registered"
        case let .missing(what): "intent missing: \(what)"
        case let .mismatch(what): "intent mismatch (\(what))"
        case let .inconsistent(what): "agent counters inconsistent (\(what))"
        }
    }
}

