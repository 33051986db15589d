import DeviceBus
import Enforcement
import NE2000
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

    /// What vpio-rogue does, against the real device model: program a remote write outside the grant,
    /// have the start denied, push bytes through the (untrapped) data port. Masking the command alone
    /// leaves RSAR/RBCR armed and the bytes land; with the disarming writes they are dropped.
    @Test func aDeniedRemoteWriteMovesNoDataThroughTheDataPort() {
        let grant = BufferGrant(owned: 0x4000..<0x6000)  // another guest owns 0x6000…
        func attempt(disarm: Bool) -> (landed: UInt32, dropped: UInt64) {
            let nic = NE2000(mac: [2, 0, 0, 0, 0, 1], interrupt: InterruptLine()) { _ in }
            func out(_ offset: UInt64, _ value: UInt32, _ width: AccessWidth = .byte) {
                nic.write(region: 0, offset: offset, width: width, value: value)
            }
            out(0x00, 0x22)
            for (offset, value) in [(0x0A, 4), (0x0B, 0), (0x08, 0x00), (0x09, 0x60)] as [(UInt64, UInt32)] { out(offset, value) }
            let denied = deniedCommand(0x12)
            if disarm { for (offset, value) in disarmingWrites(deniedCommand: denied, grant: grant) { out(offset, value) } }
            out(0x00, denied)
            out(0x10, 0x5A5A_5A5A, .dword)
            // Read 0x6000 back with a legitimate remote read.
            for (offset, value) in [(0x0A, 4), (0x0B, 0), (0x08, 0x00), (0x09, 0x60), (0x00, 0x0A)] as [(UInt64, UInt32)] { out(offset, value) }
            return (nic.read(region: 0, offset: 0x10, width: .dword), nic.counters.remoteWritesDropped)
        }
        #expect(attempt(disarm: false).landed == 0x5A5A_5A5A)  // the hole the disarming writes close
        let disarmed = attempt(disarm: true)
        #expect(disarmed.landed != 0x5A5A_5A5A && disarmed.dropped == 1)
        #expect(disarmingWrites(deniedCommand: 0x62, grant: grant).first! == (0x00, 0x22))  // page 0 for RSAR/RBCR
    }
}
