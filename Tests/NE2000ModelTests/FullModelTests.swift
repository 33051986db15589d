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
        events.flatMap { event -> [DMADecision] in
            let starts = model.apply(event)
            return [starts.remote, starts.transmit].compactMap { $0 }
        }
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

    @Test func thePROMMayBeReadAndAWriteThereIsHarmless() {
        var model = FullModel()
        #expect(run(&model, Driver.remote(count: 32, address: 0, command: 0x0A)).first?.verdict == .allowed)
        let write = run(&model, Driver.remote(count: 32, address: 0, command: 0x12)).first
        #expect(write?.verdict == .allowed && write?.isAnomaly == true, "the PROM is read-only: nothing lands")
    }

    @Test func remoteDMAWrapsAtPSTOPToPSTARTAndIsJudgedOnTheGrant() {
        let half = BufferGrant(owned: 0x4000..<0x6000)
        var model = FullModel(grant: half)
        _ = run(&model, [Driver.out(0x00, 0x21), Driver.out(0x01, 0x4C), Driver.out(0x02, 0x60)])
        // 0x5F00 + 0x200 runs past PSTOP but the device wraps to 0x4C00.
        #expect(run(&model, Driver.remote(count: 0x200, address: 0x5F00, command: 0x0A)).first?.verdict == .allowed)
        // Above PSTOP nothing wraps: 0x6000 + 0x100 is the other half.
        #expect(run(&model, Driver.remote(count: 0x100, address: 0x6000, command: 0x12)).first?.verdict == .denied(.outsideGrant))
    }

    @Test func aRemoteDMARestartedWithoutReprogrammingIsJudgedOnTheLatchedRegisters() {
        var model = FullModel(grant: BufferGrant(owned: 0x4000..<0x6000))
        _ = run(&model, Driver.remote(count: 4, address: 0x5FFC, command: 0x0A))
        model.apply(Driver.out(0x07, 0x40))
        // RSAR and RBCR are registers the device latches from, not counters: a second command repeats them.
        let again = run(&model, [Driver.out(0x00, 0x0A)])
        #expect(again == [DMADecision(kind: .remoteRead, start: 0x5FFC, count: 4, verdict: .allowed)])
        let longer = run(&model, [Driver.out(0x0A, 8), Driver.out(0x00, 0x0A)])
        #expect(longer.first?.verdict == .denied(.outsideGrant))
    }

    @Test func aCommandWithRDAndTXPStartsBoth() {
        var model = FullModel()
        let decisions = run(&model, [Driver.out(0x04, 0x40), Driver.out(0x05, 60), Driver.out(0x06, 0)]
            + Driver.remote(count: 4, address: 0x4000, command: 0x16))
        #expect(decisions.map(\.kind) == [.remoteWrite, .transmit])
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

    @Test func transmitIntoAnotherGuestsSRAMIsDenied() {
        var model = FullModel(grant: BufferGrant(owned: 0x4000..<0x6000))
        let decisions = run(&model, [Driver.out(0x04, 0x5F), Driver.out(0x05, 0x00), Driver.out(0x06, 0x02), Driver.out(0x00, 0x26)])
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

    @Test func wideRegisterAccessesAreIgnoredAsTheDeviceIgnoresThem() {
        var model = FullModel()
        model.apply(.access(.write(0x00, 0x0A, width: .word)))
        #expect(model.reusable)
    }
}
