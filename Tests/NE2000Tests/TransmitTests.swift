import DeviceBus
import NE2000
import Testing

@Suite struct TransmitTests {
    func openedNIC() -> (Bench, LinuxDriver) {
        let b = Bench()
        var driver = LinuxDriver(b)
        _ = driver.probe()
        driver.initialize(start: true)
        return (b, driver)
    }

    @Test(arguments: [60, 61, 62, 63, 64, 333, 1514])
    func driverTransmitReachesTheSink(length: Int) {
        let (b, driver) = openedNIC()
        let frame = makeFrame(to: [0x02, 9, 9, 9, 9, 9], length: length, seed: 3)
        driver.send(frame)
        #expect(b.recorder.frames == [frame])
        #expect(b.inb(Reg.tsr) == 0x01)
        #expect(b.inb(Reg.isr) & Reg.isrTX != 0)
        #expect(b.inb(Reg.cr) & Reg.trans == 0)
        #expect(b.line.isAsserted)
        #expect(b.nic.counters.framesTransmitted == 1)
    }

    @Test func shortFrameIsPaddedByTheDriverNotTheNIC() {
        let (b, driver) = openedNIC()
        let frame = makeFrame(to: [0x02, 9, 9, 9, 9, 9], length: 42)
        driver.send(frame)
        #expect(b.recorder.frames == [frame + [UInt8](repeating: 0, count: 18)])
    }

    @Test func secondTransmitBufferWorks() {
        let (b, driver) = openedNIC()
        let one = makeFrame(to: [0x02, 1, 1, 1, 1, 1], length: 1514, seed: 1)
        let two = makeFrame(to: [0x02, 2, 2, 2, 2, 2], length: 1000, seed: 2)
        driver.send(one)
        driver.send(two, page: 0x46)
        #expect(b.recorder.frames == [one, two])
    }

    @Test(arguments: [(UInt8(0x00), UInt16(60)), (0x7F, 257), (0x40, 0), (0xFF, 100), (0x3F, 300)])
    func bogusTransmitAborts(page: UInt8, count: UInt16) {
        let (b, _) = openedNIC()
        b.outb(page, Reg.tpsr)
        b.outb(UInt8(count & 0xFF), Reg.tbcr0)
        b.outb(UInt8(count >> 8), Reg.tbcr1)
        b.outb(Reg.nodma | Reg.trans | Reg.start, Reg.cr)
        #expect(b.recorder.frames.isEmpty)
        #expect(b.inb(Reg.tsr) == 0x08)
        #expect(b.inb(Reg.isr) & Reg.isrTXE != 0)
        #expect(b.nic.counters.transmitsAborted == 1)
    }

    @Test func transmitWhileStoppedDoesNothing() {
        let b = Bench()
        var driver = LinuxDriver(b)
        _ = driver.probe()
        b.outb(0x40, Reg.tpsr)
        b.outb(60, Reg.tbcr0)
        b.outb(Reg.nodma | Reg.trans | Reg.stop, Reg.cr)
        b.outb(Reg.nodma | Reg.trans, Reg.cr)  // neither STA nor STP: still stopped
        #expect(b.recorder.frames.isEmpty)
        #expect(b.inb(Reg.isr) & (Reg.isrTX | Reg.isrTXE) == 0)
        #expect(b.inb(Reg.cr) & Reg.trans == 0)
    }

    @Test func loopbackGoesToTheReceiveRing() {
        let (b, driver0) = openedNIC()
        var driver = driver0
        b.outb(0x02, Reg.tcr)  // internal loopback, as E8390_TXOFF
        let frame = makeFrame(to: Bench.mac, length: 200, seed: 5)
        driver.send(frame)
        #expect(b.recorder.frames.isEmpty)
        #expect(b.inb(Reg.isr) & (Reg.isrTX | Reg.isrRX) == Reg.isrTX | Reg.isrRX)
        #expect(b.nic.counters.framesLoopedBack == 1)
        let (frames, errors) = driver.receive()
        #expect(errors == 0)
        #expect(frames == [frame])
    }

    @Test func sinkMaySendBackIntoTheDevice() {
        // A sink that loops frames straight back as received ones must find the transmit finished.
        let line = InterruptLine()
        var nic: NE2000?
        var seenStatus: UInt8 = 0
        nic = NE2000(mac: Bench.mac, interrupt: line) { frame in
            seenStatus = nic!.state.transmitStatus
            nic!.receive(frame: frame)
        }
        var s = nic!.state
        s.command = 0x22
        s.isRunning = true
        s.interruptStatus = 0
        s.pageStart = 0x4C
        s.pageStop = 0x80
        s.boundary = 0x7F
        s.currentPage = 0x4C
        s.physicalAddress = Bench.mac
        s.transmitPageStart = 0x40
        s.transmitByteCount = 64
        s.sram.replaceSubrange(0..<6, with: Bench.mac)
        try! nic!.restore(s)
        nic!.write(region: 0, offset: 0, width: .byte, value: 0x26)
        #expect(seenStatus == 0x01)
        #expect(nic!.counters.framesReceived == 1)
        nic = nil
    }
}
