import DeviceBus
import DP8390

// The NE2000 ASIC's data port: the host's only way into buffer memory, through the DP8390 remote DMA
// channel. As the datasheet has it, a remote DMA moves data only between a Remote Read/Write command
// and its byte count reaching zero (then RDC), an abort, a new command or a reset. Outside one — no
// command, count exhausted, or the other direction — a data-port read returns `BufferMap.filler` and
// moves nothing, and a write is dropped; both are counted. (QEMU's ne2000 moves bytes at RSAR
// whenever the count is non-zero, whatever the command: it differs here.)

extension NE2000 {
    /// A Remote Read/Write command: latch CRDA ← RSAR, the count and the ring; a zero count completes at once.
    func startRemoteDMA(_ kind: DMAKind) {
        s.remoteAddress = s.remoteStartAddress
        guard s.remoteByteCount > 0 else {
            s.remoteDMA = nil
            raise(ISR.remoteDMAComplete)
            return
        }
        s.remoteDMA = ActiveRemoteDMA(kind: kind, remaining: s.remoteByteCount,
                                      ringStart: s.pageStart, ringStop: s.pageStop)
    }

    func readDataPort(width: AccessWidth) -> UInt32 {
        let count = RemoteAddress.bytesPerAccess(width, dataConfiguration: s.dataConfiguration)
        guard s.remoteDMA?.kind == .remoteRead else {
            counters.dataPortOutsideDMA &+= 1
            return fillerWord(bytes: count) & width.mask
        }
        var value: UInt32 = 0
        for i in 0..<count {
            let byte = s.remoteDMA == nil ? BufferMap.filler : takeRemoteByte { readMemory($0) }
            value |= UInt32(byte) << (8 * i)
        }
        return value & width.mask
    }

    func writeDataPort(width: AccessWidth, value: UInt32) {
        guard s.remoteDMA?.kind == .remoteWrite else {
            counters.dataPortOutsideDMA &+= 1
            return
        }
        let count = RemoteAddress.bytesPerAccess(width, dataConfiguration: s.dataConfiguration)
        let data = value & width.mask
        // Bytes of an access that straddles the end of the count are dropped.
        for i in 0..<count where s.remoteDMA != nil {
            let byte = UInt8(truncatingIfNeeded: data >> (8 * i))
            _ = takeRemoteByte { writeMemory($0, byte) }
        }
    }

    /// Moves one byte at CRDA through `body`, advances CRDA in the latched ring and counts it down;
    /// raises RDC and ends the DMA at zero. Only called while a remote DMA is running.
    private func takeRemoteByte(_ body: (UInt16) -> UInt8) -> UInt8 {
        guard var dma = s.remoteDMA else { return BufferMap.filler }
        let address = s.remoteAddress
        let byte = body(address)
        observer?.moved(dma.kind, address: address)
        s.remoteAddress = RemoteAddress.next(after: address, ringStart: dma.ringStart, ringStop: dma.ringStop)
        dma.remaining -= 1
        if dma.remaining == 0 {
            s.remoteDMA = nil
            raise(ISR.remoteDMAComplete)
        } else {
            s.remoteDMA = dma
        }
        return byte
    }

    private func fillerWord(bytes: Int) -> UInt32 {
        (0..<bytes).reduce(0) { $0 | UInt32(BufferMap.filler) << (8 * $1) }
    }

    /// One byte of buffer memory: PROM, SRAM, or the filler where nothing is decoded.
    func readMemory(_ address: UInt16) -> UInt8 {
        let a = Int(address)
        if BufferMap.prom.contains(a) { return prom[a] }
        if BufferMap.sram.contains(a) { return s.sram[a - BufferMap.sram.lowerBound] }
        return BufferMap.filler
    }

    /// Stores one byte if it falls in SRAM; the PROM is read-only and the rest is not decoded. Returns
    /// the byte for the observer.
    private func writeMemory(_ address: UInt16, _ value: UInt8) -> UInt8 {
        let a = Int(address)
        if BufferMap.sram.contains(a) { s.sram[a - BufferMap.sram.lowerBound] = value }
        return value
    }
}
