import DeviceBus
import NE2000
import Testing

@Suite struct ResetAndPROMTests {
    @Test func powerOnState() {
        let b = Bench()
        #expect(b.nic.regionSizes == [0: 32])
        #expect(b.inb(Reg.cr) == 0x21)
        #expect(b.inb(Reg.isr) == 0x80)
        b.page(2)
        #expect(b.inb(0x0F) == 0)  // IMR
        b.page(0)
        #expect(!b.line.isAsserted)
        #expect(b.nic.state.isRunning == false)
        #expect(b.nic.canReceiveFrame)
        #expect(b.inb(0x0A) == 0x50)
        #expect(b.inb(0x0B) == 0x43)
    }

    @Test func resetPortReadResetsAndWriteIsIgnored() {
        let b = Bench()
        var driver = LinuxDriver(b)
        let probed = driver.probe()
        #expect(probed)
        driver.initialize(start: true)
        #expect(b.inb(Reg.isr) & Reg.isrRST == 0)
        b.outb(0x55, Reg.resetPort)
        #expect(b.inb(Reg.isr) & Reg.isrRST == 0, "a write to the reset port does nothing")
        #expect(b.nic.state.isRunning)

        // Leave a mark in SRAM and an enabled, pending interrupt: reset must drop the line, keep SRAM.
        driver.send(makeFrame(to: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], length: 60))
        #expect(b.line.isAsserted)
        let sram = b.nic.state.sram
        #expect(b.inb(Reg.resetPort) == 0)
        #expect(b.inb(Reg.cr) == 0x21)
        #expect(b.inb(Reg.isr) == 0x80)
        #expect(!b.line.isAsserted)
        #expect(b.nic.state.interruptMask == 0)
        #expect(!b.nic.state.isRunning)
        #expect(b.nic.state.sram == sram)
    }

    @Test func resetPortSpansEightOffsets() {
        for port in UInt64(0x18)...0x1F {
            let b = Bench()
            b.outb(Reg.nodma | Reg.start, Reg.cr)
            #expect(b.inb(Reg.isr) & Reg.isrRST == 0)
            _ = b.inb(port)
            #expect(b.inb(Reg.isr) & Reg.isrRST != 0)
        }
    }

    @Test func functionResetMatchesResetPort() {
        let b = Bench()
        var driver = LinuxDriver(b)
        let probed = driver.probe()
        #expect(probed)
        driver.initialize(start: true)
        b.nic.reset()
        let afterFunctionReset = b.nic.state
        driver.initialize(start: true)
        _ = b.inb(Reg.resetPort)
        #expect(b.nic.state == afterFunctionReset)
    }

    /// ne2k_pci_init_one: word-wide DCR, RBCR = 32, RSAR = 0, remote read, then 32 inb: each inb moves a
    /// word and keeps its low byte, so SA_prom[0..5] is the MAC.
    @Test func probeReadsMACAsTheDriverDoes() {
        let mac: [UInt8] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55]
        let b = Bench(mac: mac)
        var driver = LinuxDriver(b)
        let probed = driver.probe()
        #expect(probed)
        #expect(driver.macAddress == mac)
        // NS8390_init(dev, 0) copied the address into PAR and left the NIC stopped.
        b.page(1)
        #expect((1...6).map { b.inb(UInt64($0)) } == mac)
        b.page(0)
        #expect(!b.nic.state.isRunning)
    }

    /// In byte mode the doubled PROM shows: MAC bytes twice each, zeros, then 'W' 'W' (the NE2000 mark).
    @Test func promLayoutInByteMode() {
        let b = Bench()
        b.outb(0x48, Reg.dcr)
        b.outb(32, Reg.rbcr0)
        b.outb(0, Reg.rbcr1)
        b.outb(0, Reg.rsar0)
        b.outb(0, Reg.rsar1)
        b.outb(Reg.rread | Reg.start, Reg.cr)
        let prom = (0..<32).map { _ in b.inb(Reg.dataPort) }
        let expected = Bench.mac.flatMap { [$0, $0] } + [UInt8](repeating: 0, count: 16) + [0x57, 0x57, 0x57, 0x57]
        #expect(prom == expected)
        #expect(b.inb(Reg.isr) & Reg.isrRDC != 0)
    }

    @Test func promIsReadOnly() {
        let b = Bench()
        b.outb(0x48, Reg.dcr)
        b.outb(4, Reg.rbcr0)
        b.outb(0, Reg.rsar0)
        b.outb(0, Reg.rsar1)
        b.outb(Reg.rwrite | Reg.start, Reg.cr)
        b.outl(0xDEAD_BEEF, Reg.dataPort)
        b.outb(2, Reg.rbcr0)
        b.outb(0, Reg.rsar0)
        b.outb(Reg.rread | Reg.start, Reg.cr)
        #expect(b.inb(Reg.dataPort) == Bench.mac[0])
        #expect(b.inb(Reg.dataPort) == Bench.mac[0])
    }
}
