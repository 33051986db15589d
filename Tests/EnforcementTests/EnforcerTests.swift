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
        #expect(e.report.switches == [Enforcer.ModeSwitch(access: 10, from: .cooperative, to: .vmmModel, reason: "agent report: intent missing: ring empty")])
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
