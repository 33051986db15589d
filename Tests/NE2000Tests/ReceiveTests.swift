import DeviceBus
import NE2000
import Testing

@Suite struct ReceiveTests {
    /// A NIC the Linux driver has probed and opened (ring 0x4C..<0x80, BNRY 0x7F, CURR 0x4C).
    func openedNIC() -> (Bench, LinuxDriver) {
        let b = Bench()
        var driver = LinuxDriver(b)
        _ = driver.probe()
        driver.initialize(start: true)
        return (b, driver)
    }

    @Test func frameLandsAtCurrWithHeader() {
        let (b, _) = openedNIC()
        let frame = makeFrame(to: Bench.mac, length: 300)
        #expect(b.nic.receive(frame: frame))
        let sram = b.nic.state.sram
        let base = 0x4C00 - 0x4000
        // 300 + 4 header + 4 FCS room = 308 bytes → 2 pages.
        #expect(Array(sram[base..<base + 4]) == [0x01, 0x4E, 0x30, 0x01])
        #expect(Array(sram[base + 4..<base + 304]) == frame)
        #expect(b.readPage1(Reg.curr) == 0x4E)
        #expect(b.inb(Reg.rsr) == 0x01)
        #expect(b.inb(Reg.isr) & Reg.isrRX != 0)
        #expect(b.line.isAsserted)
        #expect(b.nic.counters.framesReceived == 1)
    }

    @Test func driverReadsBackEveryFrameLength() {
        let (b, driver0) = openedNIC()
        var driver = driver0
        for length in 60...1518 {
            let frame = makeFrame(to: Bench.mac, length: length, seed: UInt8(truncatingIfNeeded: length))
            #expect(b.nic.canReceiveFrame)
            #expect(b.nic.receive(frame: frame))
            let (frames, errors) = driver.receive()
            #expect(errors == 0, "length \(length)")
            #expect(frames == [frame], "length \(length)")
        }
    }

    @Test func frameWrapsFromPageStopToPageStart() {
        let (b, driver0) = openedNIC()
        var driver = driver0
        // Move CURR/BNRY near the end of the ring as the driver would have after earlier traffic.
        b.page(1)
        b.outb(0x7F, Reg.curr)
        b.page(0)
        b.outb(0x7E, Reg.bnry)
        let frame = makeFrame(to: Bench.mac, length: 600, seed: 9)
        #expect(b.nic.receive(frame: frame))
        let sram = b.nic.state.sram
        let header = Array(sram[0x3F00..<0x3F04])
        // 608 bytes → 3 pages: 0x7F, then 0x4C, 0x4D; next frame at 0x4E.
        #expect(header == [0x01, 0x4E, 0x5C, 0x02])
        #expect(Array(sram[0x3F04..<0x4000]) == Array(frame[0..<252]))
        #expect(Array(sram[0x0C00..<0x0C00 + 348]) == Array(frame[252...]))
        #expect(b.readPage1(Reg.curr) == 0x4E)

        let (frames, errors) = driver.receive()
        #expect(errors == 0)
        #expect(frames == [frame])
        // The driver wrote BNRY = next − 1 = 0x4D.
        #expect(b.inb(Reg.bnry) == 0x4D)
    }

    @Test func frameEndingAtPageStopLeavesBoundaryBeforePageStart() {
        let (b, driver0) = openedNIC()
        var driver = driver0
        b.page(1)
        b.outb(0x7F, Reg.curr)
        b.page(0)
        b.outb(0x7E, Reg.bnry)
        #expect(b.nic.receive(frame: makeFrame(to: Bench.mac, length: 100)))
        #expect(b.readPage1(Reg.curr) == 0x4C)
        _ = driver.receive()
        // Linux writes next − 1 = PSTART − 1, outside the ring; the NIC must read it as PSTOP − 1.
        #expect(b.inb(Reg.bnry) == 0x4B)
        #expect(b.nic.canReceiveFrame)
        #expect(b.nic.receive(frame: makeFrame(to: Bench.mac, length: 1518)))
        #expect((try? b.nic.state.validate()) != nil)
    }

    @Test func ringFullBlocksUntilBoundaryAdvances() {
        let (b, driver0) = openedNIC()
        var driver = driver0
        // 51 free pages; each 1518-byte frame takes 6; canReceive needs more than 6 free.
        var accepted = 0
        while b.nic.canReceiveFrame {
            #expect(b.nic.receive(frame: makeFrame(to: Bench.mac, length: 1518, seed: UInt8(accepted))))
            accepted += 1
            #expect(accepted < 20)
            b.outb(Reg.isrRX, Reg.isr)  // acknowledged, as the driver does after reading
        }
        #expect(accepted == 8)  // 8 × 6 = 48 pages used, 3 free
        let before = b.nic.counters
        // A small frame still fits (1 page < 3 free), a big one is dropped and counted as missed.
        #expect(!b.nic.receive(frame: makeFrame(to: Bench.mac, length: 1518)))
        #expect(b.nic.counters.framesDroppedNoRoom == before.framesDroppedNoRoom + 1)
        #expect(b.inb(Reg.rsr) & 0x10 != 0)
        #expect(b.inb(Reg.cntr2) == 1)
        #expect(b.inb(Reg.cntr2) == 0, "tally counters clear when read")
        #expect(b.nic.receive(frame: makeFrame(to: Bench.mac, length: 60)))

        // The driver drains 9 frames per call (ei_receive's limit); room comes back as BNRY advances.
        let (frames, errors) = driver.receive()
        #expect(errors == 0)
        #expect(frames.count == 9)
        #expect(b.nic.canReceiveFrame)
    }

    @Test func oneFramePerAcknowledgedReceiveInterrupt() {
        let (b, _) = openedNIC()
        #expect(b.nic.canReceiveFrame)
        #expect(b.nic.receive(frame: makeFrame(to: Bench.mac, length: 100)))
        // PRX is pending: the wire holds the next frame until the driver acknowledges this one,
        // so a frame can never land unannounced behind the driver's 9-frame batch.
        #expect(!b.nic.canReceiveFrame)
        b.outb(Reg.isrRX, Reg.isr)
        #expect(b.nic.canReceiveFrame)
    }

    /// iPXE's ns8390 polls with IMR = 0 and never acknowledges PRX: a driver that never enabled the
    /// receive interrupt is paced by the ring's room alone (the PRX rule stalled iPXE after its first
    /// frame).
    @Test func aPollingDriverReceivesWithoutAcknowledgingPRX() {
        let b = Bench()
        // iPXE's open, in short: stop, ring 0x46–0x80, the station address and CURR on page 1, IMR = 0, start.
        for (value, port) in [(0x21, 0x00), (0x49, 0x0E), (0x0C, 0x0C), (0x00, 0x0D), (0x46, 0x01), (0x80, 0x02),
                              (0x46, 0x03), (0xFF, 0x07), (0x00, 0x0F), (0x61, 0x00)] as [(UInt8, UInt64)] {
            b.outb(value, port)
        }
        for (i, byte) in Bench.mac.enumerated() { b.outb(byte, UInt64(1 + i)) }
        b.outb(0x47, 0x07)
        b.outb(0x22, 0x00)
        for i in 0..<5 {
            #expect(b.nic.canReceiveFrame, "frame \(i)")
            #expect(b.nic.receive(frame: makeFrame(to: Bench.mac, length: 100, seed: UInt8(i))))
        }
        #expect(b.inb(Reg.isr) & Reg.isrRX != 0, "PRX stays set, unacknowledged")
        // Enabling the interrupt with PRX pending holds the wire again.
        b.outb(Reg.isrRX, Reg.imr)
        #expect(!b.nic.canReceiveFrame)
    }

    /// Linux masks IMR around every transmit: frames must not pile up unannounced meanwhile (a rule
    /// that followed IMR let them, and a CI download stalled at 65 KB in the 9-frame deadlock).
    @Test func anInterruptDriverMaskingIMRForATransmitStillGetsOneFramePerPRX() {
        let (b, _) = openedNIC()
        #expect(b.nic.receive(frame: makeFrame(to: Bench.mac, length: 100)))
        b.outb(0x00, Reg.imr)  // ei_start_xmit's mask
        #expect(!b.nic.canReceiveFrame)
        b.outb(Reg.isrRX, Reg.isr)
        #expect(b.nic.canReceiveFrame)
    }

    @Test func neverOverwritesUnreadFrames() {
        let (b, driver0) = openedNIC()
        var driver = driver0
        var sent: [[UInt8]] = []
        var length = 60
        // Fill the ring with mixed sizes, as far as canReceive allows and further (drops are fine).
        for i in 0..<40 {
            let frame = makeFrame(to: Bench.mac, length: length, seed: UInt8(i))
            if b.nic.receive(frame: frame) { sent.append(frame) }
            length = length * 7 % 1459 + 60
        }
        var got: [[UInt8]] = []
        while true {
            let (frames, errors) = driver.receive()
            #expect(errors == 0)
            if frames.isEmpty { break }
            got += frames
        }
        #expect(got == sent)
    }

    @Test func shortFramesArePaddedTo60() {
        let (b, driver0) = openedNIC()
        var driver = driver0
        let frame = makeFrame(to: Bench.mac, length: 42)
        #expect(b.nic.receive(frame: frame))
        let (frames, _) = driver.receive()
        #expect(frames == [frame + [UInt8](repeating: 0, count: 18)])
    }

    @Test func oversizeFramesAreDiscarded() {
        let (b, _) = openedNIC()
        #expect(!b.nic.receive(frame: makeFrame(to: Bench.mac, length: 1519)))
        #expect(b.nic.counters.framesDiscarded == 1)
    }

    @Test func stoppedReceiverSaysReadyButDiscards() {
        let b = Bench()
        var driver = LinuxDriver(b)
        _ = driver.probe()  // leaves the NIC stopped with the ring set up
        #expect(b.nic.canReceiveFrame)
        #expect(!b.nic.receive(frame: makeFrame(to: Bench.mac, length: 100)))
        #expect(b.nic.counters.framesDiscarded == 1)
        #expect(b.readPage1(Reg.curr) == 0x4C)
    }

    @Test func monitorModeCountsMissedPackets() {
        let (b, _) = openedNIC()
        b.outb(0x20 | 0x04, Reg.rcr)
        #expect(b.nic.canReceiveFrame)
        #expect(!b.nic.receive(frame: makeFrame(to: Bench.mac, length: 100)))
        #expect(b.inb(Reg.cntr2) == 1)
        #expect(b.readPage1(Reg.curr) == 0x4C)
    }

    @Test func unusableRingDiscards() {
        let (b, _) = openedNIC()
        b.outb(0x90, Reg.pstart)  // beyond SRAM, and above PSTOP
        #expect(b.nic.canReceiveFrame)
        #expect(!b.nic.receive(frame: makeFrame(to: Bench.mac, length: 100)))
        #expect(b.nic.counters.framesDiscarded == 1)
    }

    @Test func missedPacketTallyRaisesCounterInterrupt() {
        let (b, _) = openedNIC()
        b.outb(0x20 | 0x04, Reg.rcr)
        for _ in 0..<127 { b.nic.receive(frame: makeFrame(to: Bench.mac, length: 60)) }
        #expect(b.inb(Reg.isr) & Reg.isrCNT == 0)
        b.nic.receive(frame: makeFrame(to: Bench.mac, length: 60))
        #expect(b.inb(Reg.isr) & Reg.isrCNT != 0)
        #expect(b.line.isAsserted)
        #expect(b.inb(Reg.cntr2) == 128)
    }
}
