import DeviceBus
import NE2000
import Testing

@Suite struct InterruptTests {
    func startedNIC() -> Bench {
        let b = Bench()
        var driver = LinuxDriver(b)
        _ = driver.probe()
        driver.initialize(start: true)
        return b
    }

    @Test func isrIsWriteOneToClear() {
        let b = startedNIC()
        b.outb(0x00, Reg.imr)
        b.nic.receive(frame: makeFrame(to: Bench.mac, length: 60))
        LinuxDriver(b).send(makeFrame(to: [2, 0, 0, 0, 0, 1], length: 60))
        #expect(b.inb(Reg.isr) == Reg.isrRX | Reg.isrTX)
        b.outb(Reg.isrTX, Reg.isr)
        #expect(b.inb(Reg.isr) == Reg.isrRX)
        b.outb(0x00, Reg.isr)
        #expect(b.inb(Reg.isr) == Reg.isrRX)
        b.outb(0xFF, Reg.isr)
        #expect(b.inb(Reg.isr) == 0)
    }

    @Test func lineFollowsISRAndIMR() {
        let b = startedNIC()
        let before = b.recorder.risingEdges
        b.outb(0x00, Reg.imr)
        b.nic.receive(frame: makeFrame(to: Bench.mac, length: 60))
        #expect(!b.line.isAsserted, "masked")
        b.outb(Reg.isrRX, Reg.imr)
        #expect(b.line.isAsserted, "unmasking a pending source raises the line")
        b.nic.receive(frame: makeFrame(to: Bench.mac, length: 60))
        #expect(b.recorder.risingEdges == before + 1, "a level, not an edge per event")
        b.outb(0x00, Reg.imr)
        #expect(!b.line.isAsserted)
        b.outb(Reg.isrRX, Reg.imr)
        #expect(b.line.isAsserted)
        b.outb(Reg.isrRX, Reg.isr)
        #expect(!b.line.isAsserted)
        #expect(b.recorder.risingEdges == before + 2)
        #expect(b.recorder.levels.suffix(4) == [true, false, true, false])
    }

    @Test func resetBitNeitherInterruptsNorClearsByWrite() {
        let b = Bench()
        b.outb(0xFF, Reg.imr)
        #expect(b.inb(Reg.isr) == Reg.isrRST)
        #expect(!b.line.isAsserted)
        b.outb(0xFF, Reg.isr)
        #expect(b.inb(Reg.isr) == Reg.isrRST)
        b.outb(Reg.nodma | Reg.start, Reg.cr)
        #expect(b.inb(Reg.isr) == 0, "a start command clears RST")
        b.outb(Reg.nodma | Reg.stop, Reg.cr)
        #expect(b.inb(Reg.isr) == Reg.isrRST, "a stop command sets it")
        #expect(b.recorder.levels.isEmpty)
    }

    @Test func remoteDMACompletionInterrupts() {
        let b = Bench()
        b.outb(Reg.isrRDC, Reg.imr)
        b.outb(0x49, Reg.dcr)
        b.outb(4, Reg.rbcr0)
        b.outb(0, Reg.rbcr1)
        b.outb(0, Reg.rsar0)
        b.outb(0x40, Reg.rsar1)
        b.outb(Reg.rread | Reg.start, Reg.cr)
        _ = b.inw(Reg.dataPort)
        #expect(!b.line.isAsserted)
        _ = b.inw(Reg.dataPort)
        #expect(b.line.isAsserted)
        b.outb(Reg.isrRDC, Reg.isr)
        #expect(!b.line.isAsserted)
        #expect(b.recorder.risingEdges == 1)
    }

    @Test func pageTwoReadsBackConfiguration() {
        let b = Bench()
        let values: [(UInt64, UInt8)] = [(0x01, 0x46), (0x02, 0x7A), (0x04, 0x41), (0x0C, 0x0C), (0x0D, 0x02),
                                         (0x0E, 0x49), (0x0F, 0x3F)]
        for (port, value) in values { b.outb(value, port) }
        b.page(2)
        for (port, value) in values { #expect(b.inb(port) == value, "page 2 offset \(port)") }
    }

    @Test func pageOneRegistersReadBack() {
        let b = Bench()
        b.page(1)
        for port in UInt64(1)...0x0F { b.outb(UInt8(port) &* 17, port) }
        for port in UInt64(1)...0x0F { #expect(b.inb(port) == UInt8(port) &* 17) }
        b.page(0)
        #expect(b.nic.state.multicastFilter == (8...15).map { UInt8($0) &* 17 })
    }
}
