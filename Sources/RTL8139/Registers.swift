/// The RTL8139's register block (BAR0: 256 bytes of I/O or memory), the one definition of its offsets
/// and bits that the device, its VPIO models and the agent's generated header use.
public enum RTL8139Register {
    public static let size = 256

    /// IDR0–5: station address.
    public static let idr: UInt64 = 0x00
    /// MAR0–7: multicast hash filter.
    public static let mar: UInt64 = 0x08
    /// TSD0–3 (32 bits each): transmit status; writing one with OWN clear starts that descriptor's DMA.
    public static let tsd: UInt64 = 0x10
    /// TSAD0–3 (32 bits each): transmit buffers' guest-physical addresses.
    public static let tsad: UInt64 = 0x20
    /// RBSTART (32 bits): the receive ring's guest-physical address.
    public static let rbstart: UInt64 = 0x30
    /// CR: command (RST, RE, TE; BUFE read-only).
    public static let cr: UInt64 = 0x37
    /// CAPR (16 bits): where the driver has read to, minus 16.
    public static let capr: UInt64 = 0x38
    /// CBR (16 bits, read-only): where the device writes the next packet.
    public static let cbr: UInt64 = 0x3A
    public static let imr: UInt64 = 0x3C
    /// ISR (16 bits): write 1s to clear.
    public static let isr: UInt64 = 0x3E
    /// TCR (32 bits): transmit configuration; bits 30–26 and 23–22 are the chip's version.
    public static let tcr: UInt64 = 0x40
    /// RCR (32 bits): receive configuration (filters, WRAP, RBLEN).
    public static let rcr: UInt64 = 0x44
    public static let tctr: UInt64 = 0x48
    /// MPC (32 bits): missed packets; any write clears it.
    public static let mpc: UInt64 = 0x4C
    /// 9346CR: EEPROM command (mode bits 7–6, EECS, EESK, EEDI, EEDO).
    public static let cfg9346: UInt64 = 0x50
    public static let config0: UInt64 = 0x51
    public static let config1: UInt64 = 0x52
    /// MSR: media status (LINKB is 1 when the link is down).
    public static let msr: UInt64 = 0x58
    public static let config3: UInt64 = 0x59
    public static let config4: UInt64 = 0x5A
    /// HLTCLK: some chips need 'R' written here to run their clock.
    public static let hltclk: UInt64 = 0x5B
    /// BMCR, BMSR, ANAR, ANLPAR, ANER (16 bits each): the built-in PHY's MII registers.
    public static let bmcr: UInt64 = 0x62
    public static let bmsr: UInt64 = 0x64
    public static let anar: UInt64 = 0x66
    public static let anlpar: UInt64 = 0x68
    public static let aner: UInt64 = 0x6A

    /// Descriptor `index`'s TSD or TSAD offset.
    public static func tsd(_ index: Int) -> UInt64 { tsd + UInt64(4 * index) }
    public static func tsad(_ index: Int) -> UInt64 { tsad + UInt64(4 * index) }
}

/// CR bits.
public enum RTL8139Command {
    public static let reset: UInt8 = 0x10
    public static let receiveEnable: UInt8 = 0x08
    public static let transmitEnable: UInt8 = 0x04
    /// BUFE: the receive ring holds no packet.
    public static let bufferEmpty: UInt8 = 0x01
}

/// ISR/IMR bits.
public enum RTL8139Interrupt {
    public static let receiveOK: UInt16 = 0x0001
    public static let receiveError: UInt16 = 0x0002
    public static let transmitOK: UInt16 = 0x0004
    public static let transmitError: UInt16 = 0x0008
    /// RXOVW: no room in the receive ring.
    public static let receiveOverflow: UInt16 = 0x0010
    public static let linkChange: UInt16 = 0x0020
    public static let systemError: UInt16 = 0x8000
}

/// TSD bits (the low 13 bits are the frame's size).
public enum RTL8139TransmitStatus {
    public static let sizeMask: UInt32 = 0x1FFF
    /// OWN: the device is done with the buffer (the driver clears it to start a transmit).
    public static let own: UInt32 = 0x2000
    public static let underrun: UInt32 = 0x4000
    public static let ok: UInt32 = 0x8000
    /// ERTXTH: early transmit threshold, written by the driver and kept.
    public static let thresholdMask: UInt32 = 0x3F_0000
    /// TABT: aborted (here: its buffer lies outside guest memory).
    public static let aborted: UInt32 = 0x4000_0000
}

/// RCR bits.
public enum RTL8139ReceiveConfig {
    public static let acceptAll: UInt32 = 0x01
    public static let acceptPhysical: UInt32 = 0x02
    public static let acceptMulticast: UInt32 = 0x04
    public static let acceptBroadcast: UInt32 = 0x08
    /// WRAP: a packet at the end of the ring continues past it (the driver keeps room there) instead
    /// of wrapping to the start.
    public static let noWrap: UInt32 = 0x80
    /// RBLEN (bits 12–11): the ring is 8 KiB << RBLEN (plus 16 bytes).
    public static let lengthShift: UInt32 = 11

    /// The ring's length in bytes for an RCR value.
    public static func ringLength(_ rcr: UInt32) -> Int { 8192 << Int((rcr >> lengthShift) & 3) }
}

/// The 4-byte header the device writes before each received packet: status, then length with CRC.
public enum RTL8139ReceiveStatus {
    public static let ok: UInt16 = 0x0001
    public static let broadcast: UInt16 = 0x2000
    public static let physical: UInt16 = 0x4000
    public static let multicast: UInt16 = 0x8000
}
