import Enforcement
import NE2000Model
import Testing
import VPIOMonitor

@Suite struct EnforcerTests {
    func decisions(_ verdict: Verdict = .allowed, cooperative: Verdict? = nil, vmm: Verdict? = nil) -> ModeDecisions {
        var d = ModeDecisions()
        d.emulated = DMADecision(kind: .remoteRead, start: 0x4C00, count: 4, verdict: verdict)
        d.vmmModel = DMADecision(kind: .remoteRead, start: 0x4C00, count: 4, verdict: vmm ?? verdict)
        d.cooperative = DMADecision(kind: .remoteRead, start: 0x4C00, count: nil, verdict: cooperative ?? verdict)
        return d
    }

    @Test func cooperativeAllowsVerifiedDMAsAndDeniesOutOfRangeOnes() {
        let e = Enforcer(mode: .cooperative)
        #expect(e.judge(access: 1, decisions: decisions(), intent: .verified, registrations: 1))
        #expect(!e.judge(access: 2, decisions: decisions(.denied(.outsideGrant)), intent: .verified, registrations: 1))
        #expect(e.current == .cooperative)
        #expect(e.report.denied == 1 && e.report.violations.first?.reason == "outside-grant")
    }

    @Test func accessesThatStartNoDMAAreNotJudged() {
        let e = Enforcer(mode: .cooperative)
        #expect(e.judge(access: 1, decisions: ModeDecisions(), intent: .missing, registrations: 0))
        #expect(e.report.dmaStarts == 0 && e.current == .cooperative)
    }

    @Test func missingIntentFallsBackWithoutDenyingALegitimateDMA() {
        let e = Enforcer(mode: .cooperative)
        #expect(e.judge(access: 10, decisions: decisions(), intent: .missing, registrations: 1))
        #expect(e.current == .vmmModel)
        #expect(e.report.switches == [Enforcer.ModeSwitch(access: 10, from: .cooperative, to: .vmmModel, reason: "agent report: intent missing")])
        // After the fallback the full model judges: legitimate DMAs keep flowing.
        for i in 0..<100 { #expect(e.judge(access: 11 + i, decisions: decisions(), intent: .missing, registrations: 1)) }
        #expect(e.report.denied == 0)
    }

    @Test func aMismatchingAgentFallsBackAndAViolationThereEscalatesToEmulated() {
        let e = Enforcer(mode: .cooperative)
        #expect(!e.judge(access: 5, decisions: decisions(.denied(.outsideGrant)), intent: .mismatch("kind"), registrations: 1))
        #expect(e.report.switches.map(\.to) == [.vmmModel, .emulated])
        #expect(e.current == .emulated)
        #expect(e.judge(access: 6, decisions: decisions(), intent: .verified, registrations: 2))
        #expect(e.current == .emulated)  // no way back from emulated on its own
    }

    @Test func theWayBackNeedsAReRegistrationAndARunOfVerifiedIntentsAndIsRateLimited() {
        let e = Enforcer(mode: .cooperative)
        _ = e.judge(access: 0, decisions: decisions(), intent: .missing, registrations: 1)
        var access = 1
        // Verified intents without a new registration do not count.
        for _ in 0..<(2 * Enforcer.verifiedRunToReturn) {
            _ = e.judge(access: access, decisions: decisions(), intent: .verified, registrations: 1)
            access += 1
        }
        #expect(e.current == .vmmModel)
        for _ in 0..<Enforcer.verifiedRunToReturn {
            _ = e.judge(access: access, decisions: decisions(), intent: .verified, registrations: 2)
            access += 1
        }
        #expect(e.current == .cooperative && e.report.returnsToCooperative == 1)
        // A second fallback right away: the return is rate-limited.
        _ = e.judge(access: access, decisions: decisions(), intent: .missing, registrations: 2)
        for _ in 0..<(2 * Enforcer.verifiedRunToReturn) {
            _ = e.judge(access: access, decisions: decisions(), intent: .verified, registrations: 3)
            access += 1
        }
        #expect(e.current == .vmmModel)
        access += Enforcer.returnSpacing
        for _ in 0..<Enforcer.verifiedRunToReturn {
            _ = e.judge(access: access, decisions: decisions(), intent: .verified, registrations: 3)
            access += 1
        }
        #expect(e.current == .cooperative && e.report.returnsToCooperative == 2)
    }

    @Test func deniedCommandKeepsPageAndRunBitsButStartsNothing() {
        #expect(deniedCommand(0x0A) == 0x22)  // remote read + start → abort + start
        #expect(deniedCommand(0x12) == 0x22)  // remote write + start
        #expect(deniedCommand(0x26) == 0x22)  // transmit + start
        #expect(deniedCommand(0x4A) == 0x62)  // page 1 kept
    }
}
