// The DP8390 register file as the datasheet names it (DP8390D, "Register Descriptions"), the one
// definition the device, the models, the enforcement and the agent's BPF program (through the generated
// C header, `DP8390CHeader`) share. Offsets are within BAR0; 0x01–0x0F mean different registers in
// different pages (CR.PS1–0). Read-only and write-only registers differ per page: RSAR, RBCR and TBCR
// can be written but never read back.

/// Command register (CR, offset 0 in every page) bits. What a written value *does* is `CommandEffect`.
public enum CR {
    public static let offset: UInt8 = 0x00
    /// STP: stop (software reset) — no reception or transmission.
    public static let stop: UInt8 = 0x01
    /// STA: start — leaves the stopped state when STP is clear.
    public static let start: UInt8 = 0x02
    /// TXP: transmit the frame at TPSR/TBCR. Reads back 1 only while transmitting.
    public static let transmit: UInt8 = 0x04
    /// RD2–0: remote DMA command.
    public static let remoteMask: UInt8 = 0x38
    public static let remoteShift: UInt8 = 3
    /// PS1–0: register page select.
    public static let pageShift: UInt8 = 6
    public static let pageMask: UInt8 = 0xC0

    /// The register page a CR value selects.
    public static func page(_ value: UInt8) -> UInt8 { value >> pageShift }
}

/// Page 0 registers as the CPU reads them.
public enum Page0Read: UInt8, CaseIterable, Sendable {
    case cr = 0x00
    /// CLDA0/1: current local DMA address (where the receive or transmit DMA stopped).
    case clda0, clda1
    case bnry
    /// Transmit status.
    case tsr
    /// Number of collisions.
    case ncr
    case fifo
    /// Interrupt status.
    case isr
    /// CRDA0/1: current remote DMA address.
    case crda0, crda1
    /// RTL8029 identification: 'P', 'C'.
    case rtl8029id0, rtl8029id1
    /// Receive status.
    case rsr
    /// Tally counters: frame alignment errors, CRC errors, missed packets. Cleared when read.
    case cntr0, cntr1, cntr2
}

/// Page 0 registers as the CPU writes them.
public enum Page0Write: UInt8, CaseIterable, Sendable {
    case cr = 0x00
    /// Receive ring: first page, and one past the last page.
    case pstart, pstop
    case bnry
    /// Transmit page start, and transmit byte count (write-only).
    case tpsr, tbcr0, tbcr1
    /// Interrupt status: writing 1 clears a bit.
    case isr
    /// Remote DMA start address and byte count (write-only).
    case rsar0, rsar1, rbcr0, rbcr1
    /// Receive, transmit and data configuration.
    case rcr, tcr, dcr
    /// Interrupt mask.
    case imr
}

/// Page 1 registers, read and written alike.
public enum Page1: UInt8, CaseIterable, Sendable {
    case cr = 0x00
    /// PAR0–5: physical (station) address compared against unicast destinations.
    case par0, par1, par2, par3, par4, par5
    /// CURR: current page, where the next received frame goes.
    case curr
    /// MAR0–7: multicast address hash filter.
    case mar0, mar1, mar2, mar3, mar4, mar5, mar6, mar7
}

/// Page 2: read-back of the page 0 write-only configuration (diagnostics).
public enum Page2Read: UInt8, CaseIterable, Sendable {
    case cr = 0x00
    case pstart, pstop
    /// Remote next packet pointer (used only by the Send Packet command, which the NE2000 does not wire).
    case rnpp
    case tpsr
    /// Local next packet pointer, address counter upper/lower, reserved: not modelled.
    case lnpp, acu, acl, reserved8, reserved9, reservedA, reservedB
    case rcr, tcr, dcr, imr
}

/// Interrupt status (ISR) and mask (IMR) bits.
public enum ISR {
    /// PRX: frame received without error.
    public static let packetReceived: UInt8 = 0x01
    /// PTX: frame transmitted without error.
    public static let packetTransmitted: UInt8 = 0x02
    /// RXE: receive error.
    public static let receiveError: UInt8 = 0x04
    /// TXE: transmit error (aborted).
    public static let transmitError: UInt8 = 0x08
    /// OVW: receive ring overwrite warning.
    public static let overwrite: UInt8 = 0x10
    /// CNT: a tally counter's top bit is set.
    public static let counterOverflow: UInt8 = 0x20
    /// RDC: remote DMA complete.
    public static let remoteDMAComplete: UInt8 = 0x40
    /// RST: the NIC is in the reset (stopped) state. Not an interrupt source, not cleared by writes.
    public static let reset: UInt8 = 0x80
    /// The bits that can raise the line and that a write of 1 clears.
    public static let sources: UInt8 = 0x7F
}

/// Data configuration (DCR) bits.
public enum DCR {
    /// WTS: word-wide remote DMA transfers.
    public static let wordTransfer: UInt8 = 0x01
}

/// Transmit configuration (TCR) bits.
public enum TCR {
    /// LB1–0: loopback mode; any non-zero value loops transmitted frames back to the receiver.
    public static let loopbackMask: UInt8 = 0x06
}

/// Receive configuration (RCR) bits.
public enum RCR {
    /// AB: accept broadcast.
    public static let acceptBroadcast: UInt8 = 0x04
    /// AM: accept multicast that hits the MAR hash.
    public static let acceptMulticast: UInt8 = 0x08
    /// PRO: promiscuous physical — accept every destination.
    public static let promiscuous: UInt8 = 0x10
    /// MON: monitor mode — check frames, count them as missed, buffer nothing.
    public static let monitor: UInt8 = 0x20
}

/// Receive status (RSR) bits; the same byte heads every frame in the ring.
public enum RSR {
    /// PRX: received intact.
    public static let receivedOK: UInt8 = 0x01
    /// MPA: missed (no buffer or monitor mode).
    public static let missedPacket: UInt8 = 0x10
    /// PHY: destination was multicast or broadcast.
    public static let multicast: UInt8 = 0x20
    /// DIS: receiver disabled (monitor mode).
    public static let disabled: UInt8 = 0x40
}

/// Transmit status (TSR) bits.
public enum TSR {
    /// PTX: transmitted without error.
    public static let transmitted: UInt8 = 0x01
    /// ABT: transmit aborted.
    public static let aborted: UInt8 = 0x08
}
