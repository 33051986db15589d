// The DP8390 register offsets and bits the models decode (datasheet names). Offsets are within BAR0;
// 0x01–0x0F mean different registers in different pages (CR.PS1–0).

/// Command register (CR, offset 0 in every page) bits.
public enum CR {
    public static let offset: UInt8 = 0x00
    /// STP: stop (software reset).
    public static let stop: UInt8 = 0x01
    /// STA: start.
    public static let start: UInt8 = 0x02
    /// TXP: transmit the frame at TPSR/TBCR.
    public static let transmit: UInt8 = 0x04
    /// RD2–0: remote DMA command.
    public static let remoteMask: UInt8 = 0x38
    public static let remoteRead: UInt8 = 0x08
    public static let remoteWrite: UInt8 = 0x10
    /// RD2: abort / complete remote DMA.
    public static let abort: UInt8 = 0x20
    /// PS1–0: register page.
    public static let pageShift: UInt8 = 6

    /// The remote DMA kind a CR value starts, if any (RD = 001 read, 010 write; 011 "send packet" is not
    /// wired on the NE2000, and RD2 set aborts instead).
    public static func remoteKind(_ value: UInt8) -> DMAKind? {
        switch value & remoteMask {
        case remoteRead: .remoteRead
        case remoteWrite: .remoteWrite
        default: nil
        }
    }
}

/// Page 0 write-only registers.
public enum Page0Write {
    public static let pstart: UInt8 = 0x01
    public static let pstop: UInt8 = 0x02
    public static let bnry: UInt8 = 0x03
    public static let tpsr: UInt8 = 0x04
    public static let tbcr0: UInt8 = 0x05
    public static let tbcr1: UInt8 = 0x06
    public static let isr: UInt8 = 0x07
    public static let rsar0: UInt8 = 0x08
    public static let rsar1: UInt8 = 0x09
    public static let rbcr0: UInt8 = 0x0A
    public static let rbcr1: UInt8 = 0x0B
    public static let rcr: UInt8 = 0x0C
    public static let tcr: UInt8 = 0x0D
    public static let dcr: UInt8 = 0x0E
    public static let imr: UInt8 = 0x0F
}

/// Registers a real DP8390 lets the host read back, with their page: the reduced model's only inputs
/// besides the trapped command itself. RBCR0/1 and TBCR0/1 have no read-back register on the DP8390.
public enum ReadbackRegister: CaseIterable, Sendable {
    /// Page 0, 0x08/0x09: CRDA, the current remote DMA address (loaded by RSAR writes, advanced by the
    /// data port).
    case crda
    /// Page 2, 0x01: PSTART.
    case pstart
    /// Page 2, 0x02: PSTOP.
    case pstop
    /// Page 2, 0x04: TPSR.
    case tpsr

    /// (page, offsets) where the register is read.
    public var location: (page: UInt8, offsets: [UInt8]) {
        switch self {
        case .crda: (0, [0x08, 0x09])
        case .pstart: (2, [0x01])
        case .pstop: (2, [0x02])
        case .tpsr: (2, [0x04])
        }
    }
}

/// Page 1 registers the model shadows.
public enum Page1 {
    /// CURR: the page the next received frame goes to.
    public static let curr: UInt8 = 0x07
}

/// ISR bits the model cares about.
public enum ISR {
    public static let packetTransmitted: UInt8 = 0x02
    public static let transmitError: UInt8 = 0x08
    /// RDC: remote DMA complete.
    public static let remoteDMAComplete: UInt8 = 0x40
}

/// DCR.WTS: word-wide remote DMA (a byte or word data-port access then moves two bytes).
public enum DCR {
    public static let wordTransfer: UInt8 = 0x01
}

/// The NE2000's buffer memory map (16-bit addresses, 256-byte pages).
public enum BufferMap {
    /// The station-address PROM, read-only.
    public static let prom: Range<Int> = 0x0000..<0x0020
    /// 16 KiB of SRAM, pages 0x40–0x7F.
    public static let sram: Range<Int> = 0x4000..<0x8000
    /// The remote DMA address is 16 bits wide and wraps.
    public static let addressSpace = 0x10000
    public static let pageSize = 256
}
