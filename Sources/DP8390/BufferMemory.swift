import DeviceBus

/// How the NE2000 ASIC decodes BAR0 (32 bytes of I/O).
public enum BAR0 {
    public static let size: UInt64 = 0x20
    /// 0x00–0x0F: DP8390 registers (byte-wide).
    public static let registers: Range<UInt64> = 0x00..<0x10
    /// 0x10–0x17: the data port that moves bytes through the remote DMA channel.
    public static let dataPort: Range<UInt64> = 0x10..<0x18
    /// 0x18–0x1F: reading resets the NIC; writing ends the reset pulse (no effect).
    public static let resetPort: Range<UInt64> = 0x18..<0x20

    /// The block an access hits, decoded by its first port as the ASIC decodes its address lines.
    public enum Block: Sendable, Hashable {
        /// A DP8390 register of the current page.
        case register(UInt8)
        case dataPort
        case resetPort
        /// A register access wider than a byte, or one that does not fit in BAR0: dropped.
        case ignored
    }

    /// The whole access must lie in BAR0; registers are byte-wide; the data and reset ports take any width.
    public static func decode(offset: UInt64, width: AccessWidth) -> Block {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(width.rawValue))
        guard !overflow, end <= size else { return .ignored }
        if registers.contains(offset) { return width == .byte ? .register(UInt8(offset)) : .ignored }
        return dataPort.contains(offset) ? .dataPort : .resetPort
    }

    /// The ports an access covers, clipped to BAR0: what an I/O permission bitmap checks (it traps the
    /// access when any of them is trapped).
    public static func ports(offset: UInt64, width: AccessWidth) -> Range<UInt64> {
        let low = min(offset, size)
        let (end, overflow) = offset.addingReportingOverflow(UInt64(width.rawValue))
        return low..<(overflow ? size : min(end, size))
    }
}

/// The NE2000's buffer memory map (16-bit addresses, 256-byte pages), as the remote DMA sees it.
public enum BufferMap {
    /// The station-address PROM, read-only: 0x0000–0x001F.
    public static let prom: Range<Int> = 0x0000..<0x0020
    /// 16 KiB of SRAM, pages 0x40–0x7F.
    public static let sram: Range<Int> = 0x4000..<0x8000
    /// The remote DMA address is 16 bits wide and wraps.
    public static let addressSpace = 0x10000
    public static let pageSize = 256
    public static let firstPage: UInt8 = 0x40
    /// One past the last SRAM page: the largest valid PSTOP.
    public static let endPage: UInt8 = 0x80
    /// What a read of undecoded buffer memory, or of the data port outside a remote DMA, returns.
    public static let filler: UInt8 = 0xFF
}

/// The NE2000's 32-byte station-address PROM (BufferMap.prom): the address in bytes 0–5 and 0x57 0x57
/// in 14–15 ("WW", the NE2000 signature), the reserved bytes zero, each byte doubled as the ASIC maps it.
public enum StationPROM {
    public static func image(mac: [UInt8]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes.replaceSubrange(0..<6, with: Array((mac + [UInt8](repeating: 0, count: 6)).prefix(6)))
        bytes[14] = 0x57
        bytes[15] = 0x57
        return bytes.flatMap { [$0, $0] }
    }
}

/// The remote DMA's address arithmetic, shared by the device and every model that follows it.
public enum RemoteAddress {
    /// Bytes one data-port access moves. In word mode (DCR.WTS) the ASIC always transfers a 16-bit word,
    /// so a byte access returns the low byte and still moves two — ne2k-pci reads the PROM that way. In
    /// byte mode a byte or word access moves one byte. A dword access (RTL8029 insl/outsl) moves 4.
    public static func bytesPerAccess(_ width: AccessWidth, dataConfiguration dcr: UInt8) -> Int {
        if width == .dword { return 4 }
        return dcr & DCR.wordTransfer != 0 ? 2 : 1
    }

    /// The address after `address`: +1, jumping from PSTOP × 256 back to PSTART × 256 while the ring is
    /// valid (PSTART < PSTOP) — drivers read frames that wrap the receive ring in one go — and wrapping
    /// 0xFFFF → 0 otherwise.
    public static func next(after address: UInt16, ringStart: UInt8, ringStop: UInt8) -> UInt16 {
        let next = address &+ 1
        if ringStart < ringStop && next == UInt16(ringStop) << 8 { return UInt16(ringStart) << 8 }
        return next
    }
}
