import DeviceBus

// The NE2000 ASIC's data port: the host's only way into buffer memory, through the DP8390 remote DMA
// channel (CRDA advances, RBCR counts down, RDC fires when it reaches zero).

extension NE2000 {
    /// Bytes one data-port access moves. In word mode (DCR.WTS) the ASIC always fetches a 16-bit word,
    /// so a byte access returns the low byte and still advances by two — ne2k-pci reads the PROM that
    /// way. In byte mode a byte or word access moves one byte. A dword access (RTL8029 insl/outsl) moves 4.
    private func bytesPerAccess(_ width: AccessWidth) -> Int {
        if width == .dword { return 4 }
        return s.dataConfiguration & DataConfiguration.wordTransfer != 0 ? 2 : 1
    }

    func readDataPort(width: AccessWidth) -> UInt32 {
        let count = bytesPerAccess(width)
        var value: UInt32 = 0
        for i in 0..<count {
            value |= UInt32(readMemory(s.remoteAddress)) << (8 * i)
            advanceRemoteAddress()
        }
        // Reads past the byte count still return memory (ne2k-pci reads 32 PROM "bytes" as words against
        // a count of 32); only the completion is signalled once.
        consumeRemoteBytes(count)
        return value & width.mask
    }

    func writeDataPort(width: AccessWidth, value: UInt32) {
        // A write beyond the programmed count would land where the guest did not ask: drop it.
        guard s.remoteByteCount > 0 else {
            counters.remoteWritesDropped &+= 1
            return
        }
        let count = bytesPerAccess(width)
        let data = value & width.mask
        for i in 0..<count {
            writeMemory(s.remoteAddress, UInt8(truncatingIfNeeded: data >> (8 * i)))
            advanceRemoteAddress()
        }
        consumeRemoteBytes(count)
    }

    /// Remote DMA wraps from PSTOP to PSTART like the ring it usually reads; ne2k-pci does not split a
    /// frame that wraps, it relies on this.
    private func advanceRemoteAddress() {
        s.remoteAddress &+= 1
        if s.pageStart < s.pageStop && s.remoteAddress == UInt16(s.pageStop) << 8 {
            s.remoteAddress = UInt16(s.pageStart) << 8
        }
    }

    private func consumeRemoteBytes(_ count: Int) {
        guard s.remoteByteCount > 0 else { return }
        if Int(s.remoteByteCount) <= count {
            s.remoteByteCount = 0
            raise(Interrupt.remoteDMAComplete)
        } else {
            s.remoteByteCount -= UInt16(count)
        }
    }

    /// One byte of buffer memory: PROM, SRAM, or 0xFF where nothing is decoded.
    private func readMemory(_ address: UInt16) -> UInt8 {
        let a = Int(address)
        if a < BufferMemory.promSize { return prom[a] }
        if a >= BufferMemory.sramStart && a < BufferMemory.sramEnd { return s.sram[a - BufferMemory.sramStart] }
        return 0xFF
    }

    /// Stores one byte if it falls in SRAM; the PROM is read-only and the rest is not decoded.
    private func writeMemory(_ address: UInt16, _ value: UInt8) {
        let a = Int(address)
        if a >= BufferMemory.sramStart && a < BufferMemory.sramEnd { s.sram[a - BufferMemory.sramStart] = value }
    }
}
