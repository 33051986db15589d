import DeviceBus
import NE2000Model
import Testing

/// Accesses as `ne2k-pci` + `8390` issue them (offsets within BAR0).
enum Driver {
    static func out(_ offset: UInt8, _ value: UInt8) -> DeviceEvent { .access(.write(offset, UInt32(value))) }
    static func inb(_ offset: UInt8, _ value: UInt8 = 0) -> DeviceEvent { .access(.read(offset, UInt32(value))) }
    /// Programs RBCR and RSAR, then writes `command`.
    static func remote(count: UInt16, address: UInt16, command: UInt8) -> [DeviceEvent] {
        [out(0x00, 0x22), out(0x0A, UInt8(count & 0xFF)), out(0x0B, UInt8(count >> 8)),
         out(0x08, UInt8(address & 0xFF)), out(0x09, UInt8(address >> 8)), out(0x00, command)]
    }
}

@Suite struct FullModelTests {
    func run(_ model: inout FullModel, _ events: [DeviceEvent]) -> [DMADecision] {
        events.compactMap { model.apply($0) }
    }

    @Test func remoteReadIntentAndCompletionByRDCAcknowledge() {
        var model = FullModel()
        let decisions = run(&model, Driver.remote(count: 4, address: 0x4C00, command: 0x0A))
        #expect(decisions == [DMADecision(kind: .remoteRead, start: 0x4C00, count: 4, verdict: .allowed)])
        #expect(!model.reusable)
        model.apply(.access(.read(0x10, 0x12345678, width: .dword)))
        #expect(model.state.remote?.moved == 4)
        #expect(!model.reusable, "the transaction lasts until the driver acknowledges it")
        model.apply(Driver.out(0x07, 0x40))
        #expect(model.reusable)
    }

    @Test func abortCommandEndsRemoteDMA() {
        var model = FullModel()
        _ = run(&model, Driver.remote(count: 32, address: 0x0000, command: 0x0A))
        #expect(!model.reusable)
        model.apply(Driver.out(0x00, 0x21))
        #expect(model.reusable)
    }

    @Test func stationPROMReadIsAllowedButPROMWriteIsNot() {
        var model = FullModel()
        #expect(run(&model, Driver.remote(count: 32, address: 0, command: 0x0A)).first?.verdict == .allowed)
        #expect(run(&model, Driver.remote(count: 32, address: 0, command: 0x12)).first?.verdict == .denied(.outsideGrant))
    }

    @Test func remoteReadWrapsAtPSTOPToPSTART() {
        var model = FullModel()
        _ = run(&model, [Driver.out(0x00, 0x21), Driver.out(0x01, 0x4C), Driver.out(0x02, 0x80)])
        // 0x7F00 + 0x200 runs past the end of SRAM but the device wraps to 0x4C00.
        #expect(run(&model, Driver.remote(count: 0x200, address: 0x7F00, command: 0x0A)).first?.verdict == .allowed)
        // Above PSTOP nothing wraps: 0x6000 + 0x2100 leaves SRAM.
        _ = run(&model, [Driver.out(0x02, 0x60)])
        #expect(run(&model, Driver.remote(count: 0x2100, address: 0x6000, command: 0x12)).first?.verdict == .denied(.outsideGrant))
    }

    @Test func ringWrappingIntoThePROMIsDenied() {
        var model = FullModel()
        _ = run(&model, [Driver.out(0x01, 0x00), Driver.out(0x02, 0x80)])
        #expect(run(&model, Driver.remote(count: 0x200, address: 0x7F00, command: 0x12)).first?.verdict == .denied(.outsideGrant))
    }

    @Test func unprogrammedRemoteDMAIsDenied() {
        var model = FullModel()
        _ = run(&model, Driver.remote(count: 4, address: 0x4C00, command: 0x0A))
        model.apply(Driver.out(0x07, 0x40))
        // Only RSAR rewritten: RBCR has counted down where the model does not follow.
        let again = run(&model, [Driver.out(0x08, 0x04), Driver.out(0x09, 0x4C), Driver.out(0x00, 0x0A)])
        #expect(again.first?.verdict == .denied(.notProgrammed))
    }

    @Test func transmitNeedsStartAndEndsWithPTXAcknowledge() {
        var model = FullModel()
        let program = [Driver.out(0x04, 0x40), Driver.out(0x05, 0xEA), Driver.out(0x06, 0x05)]
        #expect(run(&model, program + [Driver.out(0x00, 0x25)]).isEmpty, "STP and TXP: a stopped NIC sends nothing")
        let decisions = run(&model, [Driver.out(0x00, 0x26)])
        #expect(decisions == [DMADecision(kind: .transmit, start: 0x4000, count: 0x5EA, verdict: .allowed)])
        #expect(!model.reusable)
        model.apply(Driver.out(0x07, 0x01))
        #expect(!model.reusable, "RX acknowledged, not TX")
        model.apply(Driver.out(0x07, 0x02))
        #expect(model.reusable)
    }

    @Test func transmitLeavingSRAMIsDenied() {
        var model = FullModel()
        let decisions = run(&model, [Driver.out(0x04, 0x7F), Driver.out(0x05, 0x00), Driver.out(0x06, 0x02), Driver.out(0x00, 0x26)])
        #expect(decisions.first?.verdict == .denied(.outsideGrant))
    }

    @Test func resetPortEndsEverythingInFlight() {
        var model = FullModel()
        _ = run(&model, [Driver.out(0x04, 0x40), Driver.out(0x05, 60), Driver.out(0x06, 0), Driver.out(0x00, 0x26)])
        #expect(model.state.transmitInFlight)
        model.apply(Driver.inb(0x1F))
        #expect(model.reusable)
        #expect(model.state.page == 0 && !model.state.started)
    }

    @Test func interruptLineKeepsTheDeviceBusy() {
        var model = FullModel()
        model.apply(.interrupt(asserted: true))
        #expect(!model.reusable)
        model.apply(.interrupt(asserted: false))
        #expect(model.reusable)
    }

    @Test func registersAreDecodedByPage() {
        var model = FullModel()
        _ = run(&model, [Driver.out(0x00, 0x61), Driver.out(0x07, 0x4D), Driver.out(0x01, 0x52), Driver.out(0x00, 0x21), Driver.out(0x01, 0x4C)])
        #expect(model.state.curr == 0x4D)
        #expect(model.state.pstart == 0x4C, "page 1 offset 1 is PAR0, not PSTART")
    }

    @Test func strayDataPortAccessIsCounted() {
        var model = FullModel()
        model.apply(.access(.write(0x10, 0, width: .dword)))
        #expect(model.strayDataPortAccesses == 1)
        #expect(model.reusable)
    }

    @Test func wideRegisterAccessesAreIgnoredAsTheDeviceIgnoresThem() {
        var model = FullModel()
        model.apply(.access(.write(0x00, 0x0A, width: .word)))
        #expect(model.reusable)
    }
}
