import NE2000Model
import Testing

@Suite struct ReducedModelTests {
    func decide(_ command: UInt8, crda: UInt16, pstart: UInt8 = 0x4C, pstop: UInt8 = 0x80, tpsr: UInt8 = 0x40,
                tcr: UInt8 = 0, running: Bool = true, grant: BufferGrant = .wholeDevice) -> DMAStarts {
        ReducedModel(grant: grant).decide(command: command, readback: ReadbackValues(
            crda: crda, pstart: pstart, pstop: pstop, tpsr: tpsr, tcr: tcr, running: running))
    }

    func remote(_ command: UInt8, crda: UInt16, pstart: UInt8 = 0x4C, pstop: UInt8 = 0x80, grant: BufferGrant = .wholeDevice) -> Verdict? {
        decide(command, crda: crda, pstart: pstart, pstop: pstop, grant: grant).remote?.verdict
    }

    @Test func onlyDMAStartingCommandsAreActedOn() {
        #expect(ReducedModel.mayStartDMA(command: 0x0A))
        #expect(ReducedModel.mayStartDMA(command: 0x12))
        #expect(ReducedModel.mayStartDMA(command: 0x26))
        #expect(ReducedModel.mayStartDMA(command: 0x24), "TXP without STA transmits on a running NIC")
        #expect(!ReducedModel.mayStartDMA(command: 0x22))
        #expect(!ReducedModel.mayStartDMA(command: 0x28), "RD2 set aborts")
        #expect(!ReducedModel.mayStartDMA(command: 0x25), "STP wins over TXP")
        #expect(decide(0x22, crda: 0x4000).isEmpty)
        #expect(decide(0x24, crda: 0, running: false).isEmpty, "a stopped NIC ignores TXP")
    }

    @Test func aCommandWithRDAndTXPIsJudgedAsBoth() {
        let both = decide(0x16, crda: 0x4000, tpsr: 0x40)
        #expect(both.remote?.kind == .remoteWrite && both.transmit?.kind == .transmit)
        #expect(both.count == 2)
    }

    @Test func linuxDMAsAreAllowed() {
        #expect(remote(0x12, crda: 0x4000) == .allowed, "block_output below the ring wraps back into it")
        #expect(remote(0x12, crda: 0x4600) == .allowed)
        #expect(remote(0x0A, crda: 0x7F04) == .allowed, "block_input across PSTOP")
        #expect(remote(0x0A, crda: 0x0000, pstart: 0, pstop: 0) == .allowed, "the probe's PROM read")
        #expect(decide(0x26, crda: 0, tpsr: 0x46).transmit?.verdict == .allowed)
    }

    /// Outside SRAM nothing can be harmed: the PROM is read-only, undecoded memory drops writes. A driver
    /// probing memory there (as iPXE does) is allowed, and the decision marks it as an anomaly.
    @Test func dmaOutsideSRAMIsAllowedAndMarked() {
        let prom = decide(0x12, crda: 0x0000, pstart: 0x46, pstop: 0x80).remote
        #expect(prom?.verdict == .allowed && prom?.isAnomaly == true)
        let probe = decide(0x12, crda: 0x2000, pstart: 0, pstop: 0).remote
        #expect(probe?.verdict == .allowed && probe?.isAnomaly == true)
        #expect(decide(0x0A, crda: 0x0000).remote?.isAnomaly == false, "reading the PROM is what drivers do")
        #expect(decide(0x0A, crda: 0x4600).remote?.isAnomaly == false)
    }

    @Test func aSplitGrantIsKeptWhateverTheCount() {
        let half = BufferGrant(owned: 0x4000..<0x6000)
        #expect(remote(0x0A, crda: 0x4800, pstart: 0x46, pstop: 0x60, grant: half) == .allowed)
        #expect(remote(0x12, crda: 0x4800, pstart: 0x46, pstop: 0x60, grant: half) == .allowed)
        #expect(remote(0x0A, crda: 0x5F00, pstart: 0x46, pstop: 0x80, grant: half) == .denied(.outsideGrant))
        // PSTOP below the start: nothing wraps, the address runs on past the grant.
        #expect(remote(0x12, crda: 0x5800, pstart: 0x46, pstop: 0x50, grant: half) == .denied(.outsideGrant))
        // The probe's envelope (no ring yet) is the whole address space.
        #expect(remote(0x0A, crda: 0x0000, pstart: 0, pstop: 0, grant: half) == .denied(.outsideGrant))
    }

    @Test func transmitsAreJudgedForAnyTBCR() {
        let half = BufferGrant(owned: 0x4000..<0x6000)
        #expect(decide(0x26, crda: 0, tpsr: 0x7E).transmit?.verdict == .allowed, "the NE2000 aborts a frame leaving SRAM")
        #expect(decide(0x26, crda: 0, tpsr: 0x00).transmit?.verdict == .allowed, "outside SRAM: aborted before a byte is read")
        #expect(decide(0x26, crda: 0, tpsr: 0x40, grant: half).transmit?.verdict == .denied(.outsideGrant),
                "a long TBCR from 0x4000 reaches the other half")
        #expect(decide(0x26, crda: 0, pstart: 0x60, pstop: 0x80, tpsr: 0x7E, tcr: 0x02, grant: BufferGrant(owned: 0x7E00..<0x8000))
                    .transmit?.verdict == .denied(.outsideGrant), "loopback stores into the ring")
    }

    @Test func receiveIsJudgedOnTheRing() {
        let model = ReducedModel(grant: BufferGrant(owned: 0x4000..<0x6000))
        #expect(model.decideReceive(pstart: 0x46, pstop: 0x60, curr: 0x46).verdict == .allowed)
        #expect(model.decideReceive(pstart: 0x46, pstop: 0x80, curr: 0x46).verdict == .denied(.outsideGrant))
    }

    /// The follower a replay uses moves CRDA exactly as the NE2000 does: loaded from RSAR by the command,
    /// advanced only while that DMA runs, in the ring latched then.
    @Test func readbackFollowsTheDevicesRemoteDMA() {
        var readback = DeviceReadback()
        for event in [Driver.out(0x01, 0x4C), Driver.out(0x02, 0x80), Driver.out(0x0E, 0x49)]
            + Driver.remote(count: 8, address: 0x7FFC, command: 0x0A) { readback.apply(event) }
        #expect(readback.values(atCommand: 0x22).crda == 0x7FFC)
        #expect(readback.values(atCommand: 0x0A).crda == 0x7FFC, "a new command loads RSAR")
        readback.apply(Driver.out(0x08, 0x00))
        readback.apply(Driver.out(0x01, 0x40))
        readback.apply(.access(.read(0x10, 0, width: .dword)))
        #expect(readback.values(atCommand: 0x22).crda == 0x4C00, "the latched ring, not the rewritten PSTART")
        readback.apply(.access(.read(0x10, 0, width: .byte)))
        #expect(readback.values(atCommand: 0x22).crda == 0x4C02, "word mode: a byte access moves two")
        readback.apply(.access(.read(0x10, 0, width: .dword)))
        readback.apply(.access(.read(0x10, 0, width: .dword)))
        #expect(readback.values(atCommand: 0x22).crda == 0x4C04, "the count was used up: nothing moves")
    }
}
