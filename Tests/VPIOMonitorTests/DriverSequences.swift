import SeededRandom
import DeviceBus
import NE2000Model


/// Access sequences shaped like `ne2k-pci` + `lib8390`'s paths — probe, NS8390_init, start_xmit with
/// block_output and trigger_send, the interrupt handler with receive (get_8390_hdr, block_input),
/// transmit completion, counters, and the transmit-timeout reset — with random lengths, ring positions,
/// transmit buffers and ring geometry. Register reads return plausible values; data-port values are random.
struct DriverSequence {
    var events: [DeviceEvent] = []
    var rng: SplitMix64
    var pstart: UInt8 = 0x4C
    var pstop: UInt8 = 0x80
    var nextTransmitBuffer: UInt8 = 0x40

    init(seed: UInt64) {
        rng = SplitMix64(seed: seed)
    }

    mutating func out(_ offset: UInt8, _ value: UInt8) { events.append(.access(.write(offset, UInt32(value)))) }
    mutating func inb(_ offset: UInt8, _ value: UInt8 = 0) { events.append(.access(.read(offset, UInt32(value)))) }
    mutating func line(_ asserted: Bool) { events.append(.interrupt(asserted: asserted)) }

    /// `count` 4-byte data-port transfers (insl/outsl), then the 2- and 1-byte tail.
    mutating func dataPort(_ direction: AccessDirection, bytes count: Int) {
        for _ in 0..<count / 4 {
            events.append(.access(PortAccess(direction, offset: 0x10, width: .dword, value: UInt32.random(in: 0...UInt32.max, using: &rng))))
        }
        if count & 2 != 0 { events.append(.access(PortAccess(direction, offset: 0x10, width: .word, value: 0))) }
        if count & 1 != 0 { events.append(.access(PortAccess(direction, offset: 0x10, width: .byte, value: 0))) }
    }

    mutating func remote(count: Int, address: Int, command: UInt8) {
        out(0x00, 0x22)
        out(0x0A, UInt8(count & 0xFF))
        out(0x0B, UInt8(count >> 8 & 0xFF))
        out(0x08, UInt8(address & 0xFF))
        out(0x09, UInt8(address >> 8 & 0xFF))
        out(0x00, command)
    }

    /// ne2k_pci_reset_8390: read the reset port, write it back, wait for ISR.RST, acknowledge it.
    mutating func resetNIC() {
        inb(0x1F)
        out(0x1F, 0)
        inb(0x07, 0x80)
        out(0x07, 0x80)
    }

    /// The probe: reset, then read the 32-byte station PROM word-wide through remote DMA.
    mutating func probe() {
        inb(0x00, 0x21)
        out(0x00, 0x61); inb(0x0D); out(0x0D, 0xFF); out(0x00, 0x20); inb(0x0D); inb(0x0D)
        resetNIC()
        for (offset, value) in [(0x00, 0x21), (0x0E, 0x49), (0x0A, 0), (0x0B, 0), (0x0C, 0x20), (0x0D, 0x02), (0x0F, 0),
                                (0x07, 0xFF), (0x0A, 32), (0x0B, 0), (0x08, 0), (0x09, 0), (0x00, 0x0A)] as [(UInt8, UInt8)] {
            out(offset, value)
        }
        for _ in 0..<32 { events.append(.access(.read(0x10, UInt32.random(in: 0...255, using: &rng)))) }
    }

    /// NS8390_init with a random ring geometry, then start.
    mutating func initialize() {
        pstart = UInt8.random(in: 0x4C...0x60, using: &rng)
        pstop = Bool.random(using: &rng) ? 0x80 : UInt8.random(in: 0x70...0x80, using: &rng)
        out(0x00, 0x21); out(0x0E, 0x49); out(0x0A, 0); out(0x0B, 0); out(0x0C, 0x20); out(0x0D, 0x02)
        out(0x04, 0x40); out(0x01, pstart); out(0x03, pstop - 1); out(0x02, pstop); out(0x07, 0xFF); out(0x0F, 0)
        out(0x00, 0x61)
        for i in 1...6 { out(UInt8(i), UInt8(0x50 + i)); inb(UInt8(i), UInt8(0x50 + i)) }
        out(0x07, pstart + 1)
        out(0x00, 0x21)
        out(0x07, 0xFF); out(0x0F, 0x3F); out(0x00, 0x22); out(0x0D, 0x00)
        out(0x0C, 0x04); out(0x00, 0x62)
        for i in 8...15 { out(UInt8(i), 0xFF) }
        out(0x00, 0x22)
    }

    /// start_xmit: mask interrupts, block_output (remote write, poll RDC), trigger_send, unmask.
    /// Returns with the transmit in flight; `transmitDone` acknowledges it from the interrupt handler.
    mutating func transmit() {
        let length = Int.random(in: 42...1514, using: &rng)
        let count = (max(length, 60) + 3) & ~3
        let page = nextTransmitBuffer
        nextTransmitBuffer = page == 0x40 ? 0x46 : 0x40
        out(0x0F, 0x00)
        out(0x00, 0x22)
        out(0x07, 0x40)
        out(0x0A, UInt8(count & 0xFF)); out(0x0B, UInt8(count >> 8)); out(0x08, 0); out(0x09, page)
        out(0x00, 0x12)
        dataPort(.write, bytes: count)
        for _ in 0..<Int.random(in: 1...3, using: &rng) { inb(0x07, 0x00) }
        inb(0x07, 0x40)
        out(0x07, 0x40)
        out(0x00, 0x20)
        inb(0x00, 0x22)
        let sent = max(length, 60)
        out(0x05, UInt8(sent & 0xFF)); out(0x06, UInt8(sent >> 8)); out(0x04, page)
        out(0x00, 0x26)
        out(0x0F, 0x3F)
    }

    /// The interrupt handler for a finished transmit (ei_tx_intr).
    mutating func transmitDone() {
        line(true)
        out(0x00, 0x20)
        inb(0x07, 0x02)
        inb(0x04, 0x01)
        out(0x07, 0x02)
        line(false)
        inb(0x07, 0x00)
        out(0x00, 0x22)
    }

    /// The interrupt handler receiving 1–3 frames: header read, then block_input (which may wrap the ring).
    mutating func receive() {
        line(true)
        out(0x00, 0x20)
        inb(0x07, 0x01)
        let ringPages = Int(pstop) - Int(pstart)
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            let page = Int(pstart) + Int.random(in: 0..<ringPages, using: &rng)
            out(0x00, 0x60); inb(0x07, UInt8(page + 1)); out(0x00, 0x20); inb(0x03, UInt8(page - 1))
            remote(count: 4, address: page << 8, command: 0x0A)
            dataPort(.read, bytes: 4)
            out(0x07, 0x40)
            let length = Int.random(in: 60...1514, using: &rng)
            remote(count: (length + 3) & ~3, address: page << 8 + 4, command: 0x0A)
            dataPort(.read, bytes: (length + 3) & ~3)
            out(0x07, 0x40)
            out(0x03, UInt8(page))
        }
        out(0x00, 0x60); inb(0x07, pstart); out(0x00, 0x20); inb(0x03, pstart - 1)
        out(0x07, 0x05)
        line(false)
        inb(0x07, 0x00)
        out(0x00, 0x22)
    }

    /// Tally counters half full: read and acknowledge them.
    mutating func counters() {
        line(true)
        out(0x00, 0x20)
        inb(0x07, 0x20)
        inb(0x0D); inb(0x0E); inb(0x0F)
        out(0x07, 0x20)
        line(false)
        out(0x00, 0x22)
    }

    /// ei_tx_timeout: the transmit never completed; reset the NIC and initialise it again.
    mutating func transmitTimeout() {
        out(0x0F, 0x00)
        resetNIC()
        initialize()
    }

    /// A random session: probe, init, then `steps` random driver paths.
    static func random(seed: UInt64, steps: Int) -> [DeviceEvent] {
        var sequence = DriverSequence(seed: seed)
        sequence.probe()
        sequence.initialize()
        for _ in 0..<steps {
            switch Int.random(in: 0..<10, using: &sequence.rng) {
            case 0..<4: sequence.receive()
            case 4..<8:
                sequence.transmit()
                if Int.random(in: 0..<12, using: &sequence.rng) == 0 { sequence.transmitTimeout() } else { sequence.transmitDone() }
            case 8: sequence.counters()
            default: sequence.receive()
            }
        }
        return sequence.events
    }
}
