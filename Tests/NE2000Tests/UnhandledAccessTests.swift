import DeviceBus
import NE2000
import Testing

@Suite struct UnhandledAccessTests {
    @Test(arguments: AccessWidth.allCases)
    func otherRegionsReadAllOnes(width: AccessWidth) {
        let b = Bench()
        let before = b.nic.state
        #expect(b.nic.read(region: 1, offset: 0, width: width) == width.mask)
        #expect(b.nic.read(region: 7, offset: 0x1F, width: width) == width.mask)
        b.nic.write(region: 2, offset: 0, width: width, value: 0)
        #expect(b.nic.counters.unhandledAccesses == 3)
        #expect(b.nic.state == before)
    }

    @Test func offsetsPastTheBARAndStraddlingAccesses() {
        let b = Bench()
        let before = b.nic.state
        #expect(b.nic.read(region: 0, offset: 0x20, width: .byte) == 0xFF)
        #expect(b.nic.read(region: 0, offset: 0x1E, width: .dword) == 0xFFFF_FFFF)
        #expect(b.nic.read(region: 0, offset: UInt64.max, width: .word) == 0xFFFF)
        b.nic.write(region: 0, offset: UInt64.max - 1, width: .dword, value: 0)
        #expect(b.nic.counters.unhandledAccesses == 4)
        #expect(b.nic.state == before)
    }

    @Test func wideRegisterAccessesAreNotDecoded() {
        let b = Bench()
        let before = b.nic.state
        #expect(b.nic.read(region: 0, offset: 0x07, width: .word) == 0xFFFF)
        b.nic.write(region: 0, offset: 0x00, width: .dword, value: 0x22)
        #expect(b.nic.counters.unhandledAccesses == 2)
        #expect(b.nic.state == before)
    }

    @Test func pageThreeReadsZeroAndIgnoresWrites() {
        let b = Bench()
        b.outb(0xC0 | Reg.nodma, Reg.cr)
        let before = b.nic.state
        b.outb(0xC0, 0x01)  // set_realtek_fdx: enable CONFIG3 writes
        b.outb(0x40, 0x06)
        #expect(b.inb(0x06) == 0)
        #expect(b.nic.counters.unhandledAccesses == 3)
        #expect(b.nic.state == before)
        #expect(b.inb(Reg.cr) == 0xC0 | Reg.nodma)
    }

    @Test func dataPortDecodesEightOffsets() {
        let b = Bench()
        b.outb(0x48, Reg.dcr)
        b.outb(8, Reg.rbcr0)
        b.outb(0, Reg.rbcr1)
        b.outb(0, Reg.rsar0)
        b.outb(0, Reg.rsar1)
        b.outb(Reg.rread | Reg.start, Reg.cr)
        for (i, port) in (UInt64(0x10)...0x17).enumerated() {
            #expect(b.inb(port) == Bench.mac[i / 2])
        }
    }
}
