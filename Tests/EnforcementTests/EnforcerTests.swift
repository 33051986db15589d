import DeviceBus
import Enforcement
import NE2000Model
import Testing
import VPIOMonitor

@Suite struct EnforcerTests {
    func decisions(_ verdict: Verdict = .allowed, cooperative: Verdict? = nil, vmm: Verdict? = nil) -> StartDecisions {
        StartDecisions(reference: DMADecision(kind: .remoteRead, start: 0x4C00, count: 4, verdict: verdict),
                       vmmModel: DMADecision(kind: .remoteRead, start: 0x4C00, count: 4, verdict: vmm ?? verdict),
                       cooperative: DMADecision(kind: .remoteRead, start: 0x4C00, count: nil, verdict: cooperative ?? verdict))
    }

    @Test func cooperativeAllowsVerifiedDMAsAndDeniesOutOfRangeOnes() {
        let e = Enforcer(mode: .cooperative)
        #expect(e.judge(access: 1, start: decisions(), intent: .verified, ringGeneration: 1))
        #expect(!e.judge(access: 2, start: decisions(.denied(.outsideGrant)), intent: .verified, ringGeneration: 1))
        #expect(e.current == .cooperative)
        #expect(e.report.denied == 1 && e.report.violations.first?.reason == "outside-grant")
    }

    @Test func missingIntentFallsBackWithoutDenyingALegitimateDMA() {
        let e = Enforcer(mode: .cooperative)
        #expect(e.judge(access: 10, start: decisions(), intent: .missing("ring empty"), ringGeneration: 1))
        #expect(e.current == .vmmModel)
        #expect(e.report.switches == [Enforcer.ModeSwitch(access: 10, from: .cooperative, to: .vmmModel, kind: .fallback,
                                                          reason: "agent report: intent missing: ring empty")])
        #expect(e.report.fallbacks == 1)
        // After the fallback the full model judges: legitimate DMAs keep flowing.
        for i in 0..<100 { #expect(e.judge(access: 11 + i, start: decisions(), intent: .missing("ring empty"), ringGeneration: 1)) }
        #expect(e.report.denied == 0)
    }

    @Test func aMismatchingAgentFallsBackAndAViolationThereEscalatesToEmulated() {
        let e = Enforcer(mode: .cooperative)
        #expect(!e.judge(access: 5, start: decisions(.denied(.outsideGrant)), intent: .mismatch("kind"), ringGeneration: 1))
        #expect(e.report.switches.map(\.to) == [.vmmModel, .emulated])
        #expect(e.current == .emulated)
        #expect(e.judge(access: 6, start: decisions(), intent: .verified, ringGeneration: 2))
        #expect(e.current == .emulated)  // no way back from emulated on its own
    }

    @Test func theWayBackNeedsAReRegistrationAndARunOfVerifiedIntentsAndIsRateLimited() {
        let e = Enforcer(mode: .cooperative)
        _ = e.judge(access: 0, start: decisions(), intent: .missing("ring empty"), ringGeneration: 1)
        var access = 1
        // Verified intents without a new registration do not count.
        for _ in 0..<(2 * Enforcer.verifiedRunToReturn) {
            _ = e.judge(access: access, start: decisions(), intent: .verified, ringGeneration: 1)
            access += 1
        }
        #expect(e.current == .vmmModel)
        for _ in 0..<Enforcer.verifiedRunToReturn {
            _ = e.judge(access: access, start: decisions(), intent: .verified, ringGeneration: 2)
            access += 1
        }
        #expect(e.current == .cooperative && e.report.returnsToCooperative == 1)
        // A second fallback right away: the return is rate-limited.
        _ = e.judge(access: access, start: decisions(), intent: .missing("ring empty"), ringGeneration: 2)
        for _ in 0..<(2 * Enforcer.verifiedRunToReturn) {
            _ = e.judge(access: access, start: decisions(), intent: .verified, ringGeneration: 3)
            access += 1
        }
        #expect(e.current == .vmmModel)
        access += Enforcer.returnSpacing
        for _ in 0..<Enforcer.verifiedRunToReturn {
            _ = e.judge(access: access, start: decisions(), intent: .verified, ringGeneration: 3)
            access += 1
        }
        #expect(e.current == .cooperative && e.report.returnsToCooperative == 2)
    }

    /// Before the agent registers (the driver's probe at boot) and after it unregistered cleanly,
    /// vmm-model stands in: not a fallback, and cooperative resumes at the first verified intent.
    @Test func withoutAnAgentVMMModelStandsInAndCooperativeResumesAtTheFirstVerifiedIntent() {
        let e = Enforcer(mode: .cooperative)
        #expect(e.judge(access: 24, start: decisions(), intent: .agentAbsent, ringGeneration: 0))
        #expect(e.current == .vmmModel && e.report.switches.last?.kind == .awaitingAgent)
        // While none is registered, vmm-model's model judges (and denies what it must).
        #expect(!e.judge(access: 30, start: decisions(.denied(.outsideGrant)), intent: .agentAbsent, ringGeneration: 0))
        #expect(e.current == .emulated, "a violation in vmm-model escalates as ever")
        let f = Enforcer(mode: .cooperative)
        _ = f.judge(access: 24, start: decisions(), intent: .agentAbsent, ringGeneration: 0)
        #expect(f.judge(access: 4_000, start: decisions(), intent: .verified, ringGeneration: 1))
        #expect(f.current == .cooperative && f.report.switches.last?.kind == .resumed && f.report.fallbacks == 0)
        // The agent unregisters: vmm-model stands in again; a re-registration resumes at once, but not
        // twice within the return spacing.
        _ = f.judge(access: 300_000, start: decisions(), intent: .agentAbsent, ringGeneration: 1)
        #expect(f.current == .vmmModel && f.report.fallbacks == 0)
        _ = f.judge(access: 300_001, start: decisions(), intent: .verified, ringGeneration: 1)
        #expect(f.current == .cooperative)
        _ = f.judge(access: 300_002, start: decisions(), intent: .agentAbsent, ringGeneration: 1)
        _ = f.judge(access: 300_003, start: decisions(), intent: .verified, ringGeneration: 1)
        #expect(f.current == .vmmModel, "rate-limited")
        _ = f.judge(access: 300_001 + Enforcer.returnSpacing, start: decisions(), intent: .verified, ringGeneration: 1)
        #expect(f.current == .cooperative && f.report.returnsToCooperative == 3)
    }

    /// A fallback for a wrong report keeps its stricter way back even if the agent then unregisters:
    /// only a drop *from cooperative* for want of an agent resumes at once.
    @Test func aFallbackIsNotWashedOutByUnregistering() {
        let e = Enforcer(mode: .cooperative)
        _ = e.judge(access: 10, start: decisions(), intent: .mismatch("forged"), ringGeneration: 1)
        _ = e.judge(access: 11, start: decisions(), intent: .agentAbsent, ringGeneration: 1)
        for access in 0..<(Enforcer.verifiedRunToReturn - 1) {
            _ = e.judge(access: Enforcer.returnSpacing + access, start: decisions(), intent: .verified, ringGeneration: 2)
        }
        #expect(e.current == .vmmModel && e.report.fallbacks == 1)
        _ = e.judge(access: 2 * Enforcer.returnSpacing, start: decisions(), intent: .verified, ringGeneration: 2)
        #expect(e.current == .cooperative)
    }

    /// What breaks a run toward the way back is counted by reason, so a late return can be explained.
    @Test func aBrokenRunTowardTheWayBackIsCountedByReason() {
        let e = Enforcer(mode: .cooperative)
        _ = e.judge(access: 0, start: decisions(), intent: .missing("ring empty"), ringGeneration: 1)
        var access = Enforcer.returnSpacing
        for intent in [IntentCheck.verified, .missing("ring empty"), .verified, .mismatch("count"), .missing("ring empty")] {
            _ = e.judge(access: access, start: decisions(), intent: intent, ringGeneration: 2)
            access += 1
        }
        #expect(e.report.returnRunBreaks == ["intent missing": 2, "intent mismatch": 1])
        for _ in 0..<Enforcer.verifiedRunToReturn {
            _ = e.judge(access: access, start: decisions(), intent: .verified, ringGeneration: 2)
            access += 1
        }
        #expect(e.current == .cooperative)
    }

    @Test func theWayBackIgnoresARingThatWasAlreadyRegistered() {
        let e = Enforcer(mode: .cooperative)
        _ = e.judge(access: 0, start: decisions(), intent: .mismatch("forged"), ringGeneration: 1)
        #expect(e.current == .vmmModel)
        // The same ring announced again (generation unchanged) and honest intents: no way back.
        for access in 1...(4 * Enforcer.verifiedRunToReturn) {
            _ = e.judge(access: Enforcer.returnSpacing + access, start: decisions(), intent: .verified, ringGeneration: 1)
        }
        #expect(e.current == .vmmModel)
    }

    @Test func inconsistentAgentCountersFallBackLikeAMissingIntent() {
        let e = Enforcer(mode: .cooperative)
        #expect(e.judge(access: 3, start: decisions(), intent: .inconsistent("accesses 10 vs 12"), ringGeneration: 1))
        #expect(e.current == .vmmModel)
        #expect(e.report.switches.first?.reason.contains("agent counters inconsistent") == true)
    }

    @Test func anomaliesAreAllowedAndCounted() {
        let e = Enforcer(mode: .cooperative)
        let probe = DMADecision(kind: .remoteWrite, start: 0x2000, count: 16, verdict: .allowed)
        #expect(e.judge(access: 1, start: StartDecisions(reference: probe, vmmModel: probe, cooperative: probe),
                        intent: .verified, ringGeneration: 1))
        #expect(e.report.anomalies == 1 && e.report.denied == 0)
    }

    @Test func receivesAreJudgedExceptInPassthrough() {
        let e = Enforcer(mode: .cooperative)
        #expect(!e.judgeReceive(DMADecision(kind: .receive, start: 0x4600, count: nil, verdict: .denied(.outsideGrant))))
        #expect(e.judgeReceive(DMADecision(kind: .receive, start: 0x4600, count: nil, verdict: .allowed)))
        #expect(e.report.receivesJudged == 2 && e.report.receivesDenied == 1)
        let open = Enforcer(mode: .passthrough)
        #expect(open.judgeReceive(DMADecision(kind: .receive, start: 0x4600, count: nil, verdict: .denied(.outsideGrant))))
    }
}
