import DP8390

// The transmit path: CR.TXP sends TBCR bytes from page TPSR.

extension NE2000 {
    /// Sends the frame at TPSR/TBCR, or aborts when it does not lie inside SRAM (the DP8390 would read
    /// whatever its local DMA reached; a model must not). State is final before the sink runs, so a sink
    /// that calls back into the device sees a finished transmit.
    func transmit() {
        let start = Int(s.transmitPageStart) * BufferMap.pageSize
        let length = Int(s.transmitByteCount)
        guard length > 0, start >= BufferMap.sram.lowerBound, start + length <= BufferMap.sram.upperBound else {
            s.transmitStatus = TSR.aborted
            counters.transmitsAborted &+= 1
            raise(ISR.transmitError)
            return
        }
        let offset = start - BufferMap.sram.lowerBound
        let frame = Array(s.sram[offset..<offset + length])
        if let observer {
            for address in start..<start + length { observer.moved(.transmit, address: UInt16(address)) }
        }
        s.localAddress = UInt16(truncatingIfNeeded: start + length)
        s.transmitStatus = TSR.transmitted
        raise(ISR.packetTransmitted)
        if s.transmitConfiguration & TCR.loopbackMask != 0 {
            counters.framesLoopedBack &+= 1
            deliver(frame)
        } else {
            counters.framesTransmitted &+= 1
            transmitSink(frame)
        }
    }
}
