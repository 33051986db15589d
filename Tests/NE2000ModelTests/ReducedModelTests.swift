import NE2000Model
import Testing

@Suite struct ReducedModelTests {
    let linuxRing = ReadbackValues(crda: 0, pstart: 0x4C, pstop: 0x80, tpsr: 0x40)

    func decide(_ command: UInt8, crda: UInt16, pstart: UInt8 = 0x4C, pstop: UInt8 = 0x80, tpsr: UInt8 = 0x40,
                grant: BufferGrant = .wholeDevice) -> Verdict? {
        ReducedModel(grant: grant).decide(command: command, readback: ReadbackValues(crda: crda, pstart: pstart, pstop: pstop, tpsr: tpsr))?.verdict
    }

    @Test func readBackRegistersAreListedWithTheirPage() {
        #expect(ReadbackRegister.crda.location.page == 0 && ReadbackRegister.crda.location.offsets == [0x08, 0x09])
        #expect(ReadbackRegister.allCases.filter { $0.location.page == 2 }.count == 3)
    }

    @Test func onlyDMAStartingCommandsAreDecided() {
        #expect(ReducedModel.startsDMA(command: 0x0A))
        #expect(ReducedModel.startsDMA(command: 0x12))
        #expect(ReducedModel.startsDMA(command: 0x26))
        #expect(!ReducedModel.startsDMA(command: 0x22))
        #expect(!ReducedModel.startsDMA(command: 0x28), "RD2 set aborts")
        #expect(decide(0x22, crda: 0x4000) == nil)
    }

    @Test func linuxDMAsAreAllowed() {
        #expect(decide(0x12, crda: 0x4000) == .allowed, "block_output below the ring wraps back into it")
        #expect(decide(0x12, crda: 0x4600) == .allowed)
        #expect(decide(0x0A, crda: 0x7F04) == .allowed, "block_input across PSTOP")
        #expect(decide(0x0A, crda: 0x0000, pstart: 0, pstop: 0) == .allowed, "the probe's PROM read")
        #expect(decide(0x26, crda: 0, tpsr: 0x46) == .allowed)
    }

    @Test func writeIntoThePROMIsDenied() {
        #expect(decide(0x12, crda: 0x0000) == .denied(.outsideGrant))
    }

    @Test func writeThatLeavesSRAMIsDenied() {
        // PSTOP below the start: nothing wraps, the address runs past 0x8000.
        #expect(decide(0x12, crda: 0x7F00, pstart: 0x4C, pstop: 0x60) == .denied(.outsideGrant))
        // A ring that ends beyond SRAM.
        #expect(decide(0x12, crda: 0x7F00, pstart: 0x4C, pstop: 0x90) == .denied(.outsideGrant))
    }

    @Test func ringThatWrapsIntoThePROMIsDenied() {
        #expect(decide(0x12, crda: 0x7000, pstart: 0x00, pstop: 0x80) == .denied(.outsideGrant))
    }

    @Test func readsMayNotReachAnotherGuestsSRAM() {
        let half = BufferGrant(owned: 0x4000..<0x6000)
        #expect(decide(0x0A, crda: 0x4800, pstart: 0x46, pstop: 0x60, grant: half) == .allowed)
        #expect(decide(0x0A, crda: 0x5F00, pstart: 0x46, pstop: 0x80, grant: half) == .denied(.outsideGrant))
        #expect(decide(0x0A, crda: 0x0000, pstart: 0, pstop: 0, grant: half) == .denied(.outsideGrant))
    }

    @Test func transmitPageOutsideTheGrantIsDenied() {
        #expect(decide(0x26, crda: 0, tpsr: 0x7E) == .denied(.outsideGrant), "1536 bytes from 0x7E00 leave SRAM")
        #expect(decide(0x26, crda: 0, tpsr: 0x00) == .denied(.outsideGrant))
    }

    @Test func readbackFollowsCRDAThroughTheDataPort() {
        var readback = DeviceReadback()
        for event in [Driver.out(0x01, 0x4C), Driver.out(0x02, 0x80), Driver.out(0x0E, 0x49)]
            + Driver.remote(count: 8, address: 0x7FFC, command: 0x0A) { readback.apply(event) }
        #expect(readback.values.crda == 0x7FFC)
        readback.apply(.access(.read(0x10, 0, width: .dword)))
        #expect(readback.values.crda == 0x4C00)
        readback.apply(.access(.read(0x10, 0, width: .byte)))
        #expect(readback.values.crda == 0x4C02, "word mode: a byte access moves two")
        for event in Driver.remote(count: 0, address: 0x4000, command: 0x12) { readback.apply(event) }
        readback.apply(.access(.write(0x10, 0, width: .dword)))
        #expect(readback.values.crda == 0x4000, "writes past the count are dropped and do not advance")
    }
}
