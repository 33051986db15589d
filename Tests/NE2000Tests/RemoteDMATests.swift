import DeviceBus
import NE2000
import Testing

@Suite struct RemoteDMATests {
    /// Programs a remote DMA of `count` bytes at `address`.
    func program(_ b: Bench, address: UInt16, count: UInt16, command: UInt8) {
        b.outb(UInt8(count & 0xFF), Reg.rbcr0)
        b.outb(UInt8(count >> 8), Reg.rbcr1)
        b.outb(UInt8(address & 0xFF), Reg.rsar0)
        b.outb(UInt8(address >> 8), Reg.rsar1)
        b.outb(command | Reg.start, Reg.cr)
    }

    static let modes: [(width: AccessWidth, wordMode: Bool)] =
        AccessWidth.allCases.flatMap { w in [(w, true), (w, false)] }

    /// Bytes one access moves: word mode widens byte accesses to a word, byte mode narrows word accesses.
    static func step(_ width: AccessWidth, wordMode: Bool) -> Int {
        width == .dword ? 4 : (wordMode ? 2 : 1)
    }

    @Test(arguments: modes)
    func writeThenReadBack(width: AccessWidth, wordMode: Bool) {
        let b = Bench()
        b.outb(wordMode ? 0x49 : 0x48, Reg.dcr)
        let step = Self.step(width, wordMode: wordMode)
        let accesses = 16
        let count = UInt16(accesses * step)
        var written: [UInt8] = []
        program(b, address: 0x4100, count: count, command: Reg.rwrite)
        for i in 0..<accesses {
            let value = UInt32(0x8040_2010) &* UInt32(i + 1) & width.mask
            b.nic.write(region: 0, offset: Reg.dataPort, width: width, value: value)
            // What lands in memory: the value's bytes up to the bytes moved, zero beyond the access width.
            for k in 0..<step { written.append(k < width.rawValue ? UInt8(truncatingIfNeeded: value >> (8 * k)) : 0) }
            #expect(b.inb(Reg.isr) & Reg.isrRDC == (i == accesses - 1 ? Reg.isrRDC : 0))
        }
        #expect(b.nic.state.remoteAddress == 0x4100 + count)
        b.outb(Reg.isrRDC, Reg.isr)

        program(b, address: 0x4100, count: count, command: Reg.rread)
        var read: [UInt8] = []
        for _ in 0..<accesses {
            let value = b.nic.read(region: 0, offset: Reg.dataPort, width: width)
            #expect(value & ~width.mask == 0)
            for k in 0..<step { read.append(k < width.rawValue ? UInt8(truncatingIfNeeded: value >> (8 * k)) : written[read.count]) }
        }
        #expect(read == written)
        #expect(b.inb(Reg.isr) & Reg.isrRDC != 0)
        // The words really are in SRAM where the DMA put them.
        #expect(Array(b.nic.state.sram[0x100..<0x100 + Int(count)]) == written)
    }

    @Test func rdcOnlyWhenCountReachesZero() {
        let b = Bench()
        b.outb(0x49, Reg.dcr)
        program(b, address: 0x4000, count: 5, command: Reg.rread)
        _ = b.inw(Reg.dataPort)
        _ = b.inw(Reg.dataPort)
        #expect(b.inb(Reg.isr) & Reg.isrRDC == 0)
        _ = b.inw(Reg.dataPort)  // 1 byte left, a word moves: saturates at 0
        #expect(b.inb(Reg.isr) & Reg.isrRDC != 0)
        #expect(b.nic.state.remoteDMA == nil)
        b.outb(Reg.isrRDC, Reg.isr)
        #expect(b.inw(Reg.dataPort) == 0xFFFF, "reading on gives the filler")
        #expect(b.inb(Reg.isr) & Reg.isrRDC == 0, "and does not complete again")
    }

    @Test func zeroLengthRemoteDMACompletesImmediately() {
        let b = Bench()
        program(b, address: 0x4000, count: 0, command: Reg.rwrite)
        #expect(b.inb(Reg.isr) & Reg.isrRDC != 0)
    }

    @Test func writesBeyondTheCountAreDropped() {
        let b = Bench()
        b.outb(0x49, Reg.dcr)
        program(b, address: 0x4000, count: 2, command: Reg.rwrite)
        b.outw(0x1234, Reg.dataPort)
        b.outw(0x5678, Reg.dataPort)
        #expect(b.nic.counters.dataPortOutsideDMA == 1)
        #expect(Array(b.nic.state.sram[0..<4]) == [0x34, 0x12, 0, 0])
    }

    @Test func currentRemoteAddressReadsBack() {
        let b = Bench()
        b.outb(0x49, Reg.dcr)
        program(b, address: 0x4A02, count: 64, command: Reg.rread)
        _ = b.inl(Reg.dataPort)
        #expect(b.inb(0x08) == 0x06)
        #expect(b.inb(0x09) == 0x4A)
    }

    @Test func remoteDMAWrapsAtPageStop() {
        let b = Bench()
        b.outb(0x49, Reg.dcr)
        b.outb(0x50, Reg.pstart)
        b.outb(0x60, Reg.pstop)
        program(b, address: 0x5FFC, count: 8, command: Reg.rwrite)
        b.outl(0x0403_0201, Reg.dataPort)
        b.outl(0x0807_0605, Reg.dataPort)
        #expect(Array(b.nic.state.sram[0x1FFC..<0x2000]) == [1, 2, 3, 4])
        #expect(Array(b.nic.state.sram[0x1000..<0x1004]) == [5, 6, 7, 8])
        program(b, address: 0x5FFE, count: 4, command: Reg.rread)
        #expect(b.inl(Reg.dataPort) == 0x0605_0403)
    }

    @Test func undecodedMemoryReadsAllOnes() {
        let b = Bench()
        b.outb(0x49, Reg.dcr)
        program(b, address: 0x0020, count: 4, command: Reg.rread)
        #expect(b.inl(Reg.dataPort) == 0xFFFF_FFFF)
        program(b, address: 0x8000, count: 2, command: Reg.rread)
        #expect(b.inw(Reg.dataPort) == 0xFFFF)
        // 0xFFFF wraps to 0x0000 (the PROM) rather than running off the end.
        program(b, address: 0xFFFF, count: 2, command: Reg.rread)
        #expect(b.inw(Reg.dataPort) == UInt16(Bench.mac[0]) << 8 | 0xFF)
    }

    // The datasheet's remote DMA: data moves only between a Remote Read/Write command and its count
    // reaching zero (QEMU's ne2000 moves bytes at RSAR whenever RBCR is non-zero).

    @Test func withoutACommandTheDataPortMovesNothing() {
        let b = Bench()
        b.outb(0x49, Reg.dcr)
        b.outb(4, Reg.rbcr0)
        b.outb(0, Reg.rbcr1)
        b.outb(0x00, Reg.rsar0)
        b.outb(0x41, Reg.rsar1)
        b.outl(0x5A5A_5A5A, Reg.dataPort)
        #expect(b.inl(Reg.dataPort) == 0xFFFF_FFFF)
        #expect(Array(b.nic.state.sram[0x100..<0x104]) == [0, 0, 0, 0])
        #expect(b.nic.counters.dataPortOutsideDMA == 2)
        #expect(b.inb(Reg.isr) & Reg.isrRDC == 0)
    }

    @Test func theDirectionIsTheCommands() {
        let b = Bench()
        b.outb(0x49, Reg.dcr)
        program(b, address: 0x4100, count: 4, command: Reg.rread)
        b.outl(0x5A5A_5A5A, Reg.dataPort)
        #expect(Array(b.nic.state.sram[0x100..<0x104]) == [0, 0, 0, 0], "a write during a remote read is dropped")
        #expect(b.nic.state.remoteDMA?.remaining == 4)
    }

    @Test func registersRewrittenDuringADMADoNotSteerIt() {
        let b = Bench()
        b.outb(0x49, Reg.dcr)
        b.outb(0x46, Reg.pstart)
        b.outb(0x80, Reg.pstop)
        program(b, address: 0x7FFC, count: 8, command: Reg.rwrite)
        b.outl(0x0403_0201, Reg.dataPort)
        b.outb(0x00, Reg.rsar0)
        b.outb(0x00, Reg.rsar1)
        b.outb(0xFF, Reg.rbcr0)
        b.outb(0xFF, Reg.rbcr1)
        b.outb(0x40, Reg.pstart)
        b.outb(0x50, Reg.pstop)
        b.outl(0x0807_0605, Reg.dataPort)
        #expect(Array(b.nic.state.sram[0x3FFC..<0x4000]) == [1, 2, 3, 4])
        #expect(Array(b.nic.state.sram[0x0600..<0x0604]) == [5, 6, 7, 8], "wrapped to the latched PSTART")
        #expect(b.inb(Reg.isr) & Reg.isrRDC != 0, "ended after the latched count")
        b.outl(0xAAAA_AAAA, Reg.dataPort)
        #expect(b.nic.counters.dataPortOutsideDMA == 1)
    }

    @Test func aCommandWithRD000LeavesTheRemoteDMARunning() {
        let b = Bench()
        b.outb(0x49, Reg.dcr)
        program(b, address: 0x4100, count: 8, command: Reg.rwrite)
        b.outl(0x0403_0201, Reg.dataPort)
        b.outb(0x82, Reg.cr)  // page 2, started, RD = 000
        #expect(b.inb(Reg.cr) & 0x38 == Reg.rwrite, "CR still reads back the remote write")
        b.outb(0x02, Reg.cr)
        b.outl(0x0807_0605, Reg.dataPort)
        #expect(Array(b.nic.state.sram[0x100..<0x108]) == [1, 2, 3, 4, 5, 6, 7, 8])
        b.outb(0x22, Reg.cr)
        #expect(b.nic.state.remoteDMA == nil)
    }

    @Test func bytesOfAnAccessPastTheCountAreFillerOrDropped() {
        let b = Bench()
        b.outb(0x49, Reg.dcr)
        program(b, address: 0x4100, count: 3, command: Reg.rwrite)
        b.outl(0x0403_0201, Reg.dataPort)
        #expect(Array(b.nic.state.sram[0x100..<0x104]) == [1, 2, 3, 0])
        program(b, address: 0x4100, count: 3, command: Reg.rread)
        #expect(b.inl(Reg.dataPort) == 0xFF03_0201)
    }

    @Test func resetEndsTheRemoteDMA() {
        let b = Bench()
        program(b, address: 0x4100, count: 8, command: Reg.rwrite)
        _ = b.inb(0x1F)
        #expect(b.nic.state.remoteDMA == nil)
    }
}
