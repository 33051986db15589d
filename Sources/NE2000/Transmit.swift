// The transmit path: CR.TXP sends TBCR bytes from page TPSR.

extension NE2000 {
    /// Sends the frame at TPSR/TBCR, or aborts when it does not lie inside SRAM (the DP8390 would read
    /// whatever its local DMA reached; a model must not). State is final before the sink runs, so a sink
    /// that calls back into the device sees a finished transmit.
    func transmit() {
        let start = Int(s.transmitPageStart) * BufferMemory.pageSize
        let length = Int(s.transmitByteCount)
        guard length > 0, start >= BufferMemory.sramStart, start + length <= BufferMemory.sramEnd else {
            s.transmitStatus = TransmitStatus.aborted
            counters.transmitsAborted &+= 1
            raise(Interrupt.transmitError)
            return
        }
        let offset = start - BufferMemory.sramStart
        let frame = Array(s.sram[offset..<offset + length])
        s.localAddress = UInt16(truncatingIfNeeded: start + length)
        s.transmitStatus = TransmitStatus.transmitted
        raise(Interrupt.packetTransmitted)
        if s.transmitConfiguration & TransmitConfiguration.loopbackMask != 0 {
            counters.framesLoopedBack &+= 1
            deliver(frame)
        } else {
            counters.framesTransmitted &+= 1
            transmitSink(frame)
        }
    }
}
