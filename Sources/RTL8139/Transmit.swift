extension RTL8139 {
    /// A TSD write with OWN clear: the device reads TSD's size in bytes from TSAD in guest memory and
    /// sends them, then sets OWN and TOK and raises TOK. A buffer outside guest memory is never read:
    /// the descriptor ends aborted (OWN, TABT) with TER. Waits, OWN clear, while TE is off.
    func startTransmit(descriptor index: Int) {
        let status = s.tsd[index]
        guard status & RTL8139TransmitStatus.own == 0, s.transmitEnabled else { return }
        let size = Int(status & RTL8139TransmitStatus.sizeMask)
        let kept = status & (RTL8139TransmitStatus.sizeMask | RTL8139TransmitStatus.thresholdMask)
        guard let frame = memory.read(guestAddress: UInt64(s.tsad[index]), count: size) else {
            counters.transmitsRefused += 1
            abort(descriptor: index)
            return
        }
        transmitSink(frame)
        counters.framesTransmitted += 1
        s.tsd[index] = kept | RTL8139TransmitStatus.own | RTL8139TransmitStatus.ok
        s.isr |= RTL8139Interrupt.transmitOK
    }

    /// Ends descriptor `index` without reading its buffer: OWN and TABT, TER raised. The device's own
    /// refusal (a buffer outside guest memory), and a host's denial of a transmit it must not start.
    public func abortTransmit(descriptor index: Int) {
        abort(descriptor: index)
        updateInterruptLine()
    }

    private func abort(descriptor index: Int) {
        let kept = s.tsd[index] & (RTL8139TransmitStatus.sizeMask | RTL8139TransmitStatus.thresholdMask)
        s.tsd[index] = kept | RTL8139TransmitStatus.own | RTL8139TransmitStatus.aborted
        s.isr |= RTL8139Interrupt.transmitError
    }
}
