import DeviceBus
import RTL8139

/// The host's reduced model of the RTL8139: only the registers that steer its DMA (TSAD0–3, RBSTART,
/// RCR's ring length and WRAP, CR's RE) and the writes that start it (TSD0–3). The device reads and
/// writes guest memory on its own later, so the check is made where the range is fixed: at the TSD
/// write that starts a transmit (the buffer is read then), and at every write that leaves the
/// receiver enabled (the ring it will write into is then fixed until the next such write).
///
/// `allowed` is the guest's own memory; `forbidden` what it must not reach inside it (the agent's ring,
/// later another guest's memory). A range passes only when it lies wholly inside one allowed range and
/// meets no forbidden one.
public struct RTL8139DMACheck: Sendable {
    public var allowed: [Range<UInt64>]
    public var forbidden: [Range<UInt64>]
    /// The steering registers as the device holds them (every write that reached it passed here).
    public private(set) var shadow = Shadow()

    public struct Shadow: Sendable, Equatable {
        public var tsad: [UInt32] = [0, 0, 0, 0]
        public var rbstart: UInt32 = 0
        public var rcr: UInt32 = 0
        public var receiving = false
        public var transmitting = false
    }

    /// A transmit the write would start whose buffer is outside what the guest may reach.
    public struct TransmitDenial: Equatable, Sendable {
        public var descriptor: Int
        public var range: Range<UInt64>

        public init(descriptor: Int, range: Range<UInt64>) {
            self.descriptor = descriptor
            self.range = range
        }
    }

    /// What to do with a guest write.
    public enum Verdict: Equatable, Sendable {
        case pass
        /// Drop the write; abort the transmits listed (the guest sees TABT and TER), and leave the
        /// receiver on the ring it had when `ring` is set (the ring the write would have set up).
        case deny(transmits: [TransmitDenial], ring: Range<UInt64>?)
    }

    public init(allowed: [Range<UInt64>], forbidden: [Range<UInt64>] = []) {
        self.allowed = allowed
        self.forbidden = forbidden
    }

    /// Judges a write before it reaches the device, and keeps the shadow of what passed. `deviceTSD` is
    /// TSD0–3 as the device holds them now (readable registers): a write of part of a TSD starts a
    /// transmit with the rest as it is.
    public mutating func judge(offset: UInt64, width: AccessWidth, value: UInt32, deviceTSD: [UInt32]) -> Verdict {
        var next = shadow, status = deviceTSD
        let written = (0..<width.rawValue).map { (offset + UInt64($0), UInt8(truncatingIfNeeded: value >> (8 * $0))) }
        for (at, byte) in written { Self.store(byte, at: at, into: &next, status: &status) }
        let touchesCommand = written.contains { $0.0 == RTL8139Register.cr }
        let transmits = (0..<4).filter { index in
            let touchesStatus = written.contains { (RTL8139Register.tsd(index)..<RTL8139Register.tsd(index) + 4).contains($0.0) }
            return next.transmitting && status[index] & RTL8139TransmitStatus.own == 0 && (touchesCommand || touchesStatus)
        }.compactMap { index -> TransmitDenial? in
            let range = Self.range(UInt64(next.tsad[index]), Int(status[index] & RTL8139TransmitStatus.sizeMask))
            return permits(range) ? nil : TransmitDenial(descriptor: index, range: range)
        }
        let ring = next.receiving && next != shadow && !permits(ringRange(next)) ? ringRange(next) : nil
        guard transmits.isEmpty, ring == nil else { return .deny(transmits: transmits, ring: ring) }
        shadow = next
        return .pass
    }

    /// The device was reset (RST or a PCI function reset): nothing steers a DMA any more.
    public mutating func reset() { shadow = Shadow() }

    /// Whether the ring the device would write now is still permitted (after `forbidden` grew).
    public var ringPermitted: Bool { !shadow.receiving || permits(ringRange(shadow)) }

    /// Every byte the receiver may write: the ring, and with WRAP the largest packet past its end.
    public func ringRange(_ s: Shadow) -> Range<UInt64> {
        let length = RTL8139ReceiveConfig.ringLength(s.rcr)
        let overhang = s.rcr & RTL8139ReceiveConfig.noWrap != 0 ? RTL8139.largestPacket : 0
        return Self.range(UInt64(s.rbstart), length + overhang)
    }

    public func permits(_ range: Range<UInt64>) -> Bool {
        allowed.contains { $0.lowerBound <= range.lowerBound && range.upperBound <= $0.upperBound }
            && !forbidden.contains { $0.overlaps(range) }
    }

    static func range(_ start: UInt64, _ count: Int) -> Range<UInt64> {
        let (end, overflow) = start.addingReportingOverflow(UInt64(count))
        return overflow ? start..<UInt64.max : start..<end
    }

    /// The byte's effect on the steering registers and TSD (CR: RST clears RCR and every TSD to OWN,
    /// RE and TE as written), as the device applies it.
    static func store(_ byte: UInt8, at offset: UInt64, into s: inout Shadow, status: inout [UInt32]) {
        let R = RTL8139Register.self
        func merged(_ register: UInt32, _ base: UInt64) -> UInt32 {
            let shift = UInt32(8 * (offset - base))
            return register & ~(0xFF << shift) | UInt32(byte) << shift
        }
        switch offset {
        case R.tsd..<R.tsad:
            let index = Int(offset - R.tsd) / 4
            status[index] = merged(status[index], R.tsd(index))
        case R.tsad..<R.tsad + 16:
            let index = Int(offset - R.tsad) / 4
            s.tsad[index] = merged(s.tsad[index], R.tsad(index))
        case R.rbstart..<R.rbstart + 4: s.rbstart = merged(s.rbstart, R.rbstart)
        case R.rcr..<R.rcr + 4: s.rcr = merged(s.rcr, R.rcr)
        case R.cr:
            if byte & RTL8139Command.reset != 0 {
                s.rcr = 0
                status = [UInt32](repeating: RTL8139TransmitStatus.own, count: 4)
            }
            s.receiving = byte & RTL8139Command.receiveEnable != 0
            s.transmitting = byte & RTL8139Command.transmitEnable != 0
        default: break
        }
    }
}
