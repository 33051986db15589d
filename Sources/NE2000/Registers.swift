// Register offsets and bit names, as the DP8390D datasheet and the NE2000/RTL8029 ASIC name them.
// Offsets are relative to BAR0; 0x00–0x0F is the 8390 core, page-selected by CR.PS1–0.

/// How BAR0 (32 bytes of I/O) is decoded by the NE2000 ASIC.
enum PortBlock {
    /// 0x00–0x0F: DP8390 registers.
    static let registers: Range<UInt64> = 0x00..<0x10
    /// 0x10–0x17: the data port that moves bytes through the remote DMA channel.
    static let dataPort: Range<UInt64> = 0x10..<0x18
    /// 0x18–0x1F: reading resets the NIC; writing ends the reset pulse (no effect here).
    static let resetPort: Range<UInt64> = 0x18..<0x20
    /// Size of BAR0.
    static let size: UInt64 = 0x20
}

/// The buffer memory behind the remote DMA channel: the station-address PROM and 16 KiB of SRAM.
enum BufferMemory {
    /// PROM: 0x0000–0x001F.
    static let promSize = 32
    /// SRAM: 0x4000–0x7FFF, i.e. pages 0x40–0x7F (the ring may end at page 0x80).
    static let sramStart = 0x4000
    static let sramSize = 0x4000
    static let sramEnd = sramStart + sramSize
    static let firstPage: UInt8 = 0x40
    /// One past the last SRAM page: the largest valid PSTOP.
    static let endPage: UInt8 = 0x80
    static let pageSize = 256
}

/// Command register (CR), at offset 0 in every page.
enum Command {
    /// STP: stop (software reset) — no reception or transmission.
    static let stop: UInt8 = 0x01
    /// STA: start — leaves the stopped state when STP is clear.
    static let start: UInt8 = 0x02
    /// TXP: transmit the frame at TPSR/TBCR. Reads back 1 only while transmitting.
    static let transmitPacket: UInt8 = 0x04
    /// RD2–0: remote DMA command.
    static let remoteDMAMask: UInt8 = 0x38
    static let remoteRead: UInt8 = 0x08
    static let remoteWrite: UInt8 = 0x10
    /// RD2 set: abort / complete remote DMA.
    static let abortDMA: UInt8 = 0x20
    /// PS1–0: register page select.
    static let pageShift: UInt8 = 6
}

/// Page 0 registers as the CPU reads them.
enum Page0Read: UInt8 {
    case cr = 0x00
    /// Current local DMA address (where the receive DMA stopped).
    case clda0, clda1
    case bnry
    /// Transmit status.
    case tsr
    /// Number of collisions.
    case ncr
    case fifo
    /// Interrupt status.
    case isr
    /// Current remote DMA address.
    case crda0, crda1
    /// RTL8029 identification: 'P', 'C'.
    case rtl8029id0, rtl8029id1
    /// Receive status.
    case rsr
    /// Tally counters: frame alignment errors, CRC errors, missed packets. Cleared when read.
    case cntr0, cntr1, cntr2
}

/// Page 0 registers as the CPU writes them.
enum Page0Write: UInt8 {
    case cr = 0x00
    /// Receive ring: first page, and one past the last page.
    case pstart, pstop
    case bnry
    /// Transmit page start, and transmit byte count.
    case tpsr, tbcr0, tbcr1
    /// Interrupt status: writing 1 clears a bit.
    case isr
    /// Remote DMA start address and byte count.
    case rsar0, rsar1, rbcr0, rbcr1
    /// Receive, transmit and data configuration.
    case rcr, tcr, dcr
    /// Interrupt mask.
    case imr
}

/// Page 1 registers, read and written alike.
enum Page1: UInt8 {
    case cr = 0x00
    /// Physical (station) address compared against unicast destinations.
    case par0, par1, par2, par3, par4, par5
    /// Current page: where the next received frame goes.
    case curr
    /// Multicast address hash filter.
    case mar0, mar1, mar2, mar3, mar4, mar5, mar6, mar7
}

/// Page 2: read-back of the page 0 write-only configuration (diagnostics).
enum Page2Read: UInt8 {
    case cr = 0x00
    case pstart, pstop
    /// Remote next packet pointer (used only by the Send Packet command, which the NE2000 cannot use).
    case rnpp
    case tpsr
    /// Local next packet pointer, address counter upper/lower, reserved: not modelled.
    case lnpp, acu, acl, reserved8, reserved9, reservedA, reservedB
    case rcr, tcr, dcr, imr
}

/// Interrupt status (ISR) and mask (IMR) bits.
enum Interrupt {
    /// PRX: frame received without error.
    static let packetReceived: UInt8 = 0x01
    /// PTX: frame transmitted without error.
    static let packetTransmitted: UInt8 = 0x02
    /// RXE: receive error.
    static let receiveError: UInt8 = 0x04
    /// TXE: transmit error (aborted).
    static let transmitError: UInt8 = 0x08
    /// OVW: receive ring overwrite warning.
    static let overwrite: UInt8 = 0x10
    /// CNT: a tally counter's top bit is set.
    static let counterOverflow: UInt8 = 0x20
    /// RDC: remote DMA complete.
    static let remoteDMAComplete: UInt8 = 0x40
    /// RST: the NIC is in the reset (stopped) state. Not an interrupt source, not cleared by writes.
    static let reset: UInt8 = 0x80
    /// The bits that can raise the line and that a write of 1 clears.
    static let sources: UInt8 = 0x7F
}

/// Data configuration (DCR) bits.
enum DataConfiguration {
    /// WTS: word-wide remote DMA transfers.
    static let wordTransfer: UInt8 = 0x01
}

/// Transmit configuration (TCR) bits.
enum TransmitConfiguration {
    /// LB1–0: loopback mode; any non-zero value loops transmitted frames back to the receiver.
    static let loopbackMask: UInt8 = 0x06
}

/// Receive configuration (RCR) bits.
enum ReceiveConfiguration {
    /// AB: accept broadcast.
    static let acceptBroadcast: UInt8 = 0x04
    /// AM: accept multicast that hits the MAR hash.
    static let acceptMulticast: UInt8 = 0x08
    /// PRO: promiscuous physical — accept every destination.
    static let promiscuous: UInt8 = 0x10
    /// MON: monitor mode — check frames, count them as missed, buffer nothing.
    static let monitor: UInt8 = 0x20
}

/// Receive status (RSR) bits; the same byte heads every frame in the ring.
enum ReceiveStatus {
    /// PRX: received intact.
    static let receivedOK: UInt8 = 0x01
    /// MPA: missed (no buffer or monitor mode).
    static let missedPacket: UInt8 = 0x10
    /// PHY: destination was multicast or broadcast.
    static let multicast: UInt8 = 0x20
    /// DIS: receiver disabled (monitor mode).
    static let disabled: UInt8 = 0x40
}

/// Transmit status (TSR) bits.
enum TransmitStatus {
    /// PTX: transmitted without error.
    static let transmitted: UInt8 = 0x01
    /// ABT: transmit aborted.
    static let aborted: UInt8 = 0x08
}
