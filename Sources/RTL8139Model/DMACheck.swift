import DeviceBus
import RTL8139

/// The host's reduced model of the RTL8139: the DMA check. The device reads and writes guest memory on
/// its own later, so the check is made where the range is fixed — at a write that starts a transmit
/// (TSD with OWN clear, or CR enabling TE with descriptors pending: the buffer is read then) and at a
/// write that leaves the receiver on a ring (RBSTART, RCR's length and WRAP, CR's RE: the ring is then
/// fixed until the next such write). It keeps no state of its own: the registers as they will be are
/// the device's readable ones (TSD, TSAD, RBSTART, RCR, CR) with the written bytes merged in, so TSAD
/// writes need not trap at all.
///
/// `allowed` is the guest's own memory; `forbidden` what it must not reach inside it (the agent's ring,
/// later another guest's memory). A range passes only when it lies wholly inside one allowed range and
/// meets no forbidden one.
public struct RTL8139DMACheck: Sendable {
    public var allowed: [Range<UInt64>]
    public var forbidden: [Range<UInt64>]

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
        /// Drop the write; abort the transmits listed (the guest sees TABT and TER). `ring` is set when
        /// the write would have left the receiver on a ring outside (the receiver keeps the ring it had).
        case deny(transmits: [TransmitDenial], ring: Range<UInt64>?)
    }

    public init(allowed: [Range<UInt64>], forbidden: [Range<UInt64>] = []) {
        self.allowed = allowed
        self.forbidden = forbidden
    }

    /// Judges a write before it reaches the device, whose registers are `device` now.
    public func judge(offset: UInt64, width: AccessWidth, value: UInt32, device: RTL8139State) -> Verdict {
        var next = device
        let written = (0..<width.rawValue).map { (offset + UInt64($0), UInt8(truncatingIfNeeded: value >> (8 * $0))) }
        // The device's own rules for how the bytes land (RTL8139State), so the check cannot drift from it.
        for (at, byte) in written where !next.storeSteering(byte, at: at) && at == RTL8139Register.cr { next.applyCommand(byte) }
        let touches = { (range: Range<UInt64>) in written.contains { range.contains($0.0) } }
        let command = touches(RTL8139Register.cr..<RTL8139Register.cr + 1)
        let transmits = (0..<4).filter { index in
            next.transmitEnabled && next.tsd[index] & RTL8139TransmitStatus.own == 0
                && (command || touches(RTL8139Register.tsd(index)..<RTL8139Register.tsd(index) + 4))
        }.compactMap { index -> TransmitDenial? in
            let range = Self.range(UInt64(next.tsad[index]), Int(next.tsd[index] & RTL8139TransmitStatus.sizeMask))
            return permits(range) ? nil : TransmitDenial(descriptor: index, range: range)
        }
        let steersRing = command || touches(RTL8139Register.rbstart..<RTL8139Register.rbstart + 4)
            || touches(RTL8139Register.rcr..<RTL8139Register.rcr + 4)
        let ring = next.receiveEnabled && steersRing && !permits(ringRange(next)) ? ringRange(next) : nil
        return transmits.isEmpty && ring == nil ? .pass : .deny(transmits: transmits, ring: ring)
    }

    /// Whether the ring the device writes now is permitted (to re-check after `forbidden` grew).
    public func ringPermitted(_ device: RTL8139State) -> Bool { !device.receiveEnabled || permits(ringRange(device)) }

    /// Every byte the receiver may write: the ring, and with WRAP the largest packet past its end.
    public func ringRange(_ s: RTL8139State) -> Range<UInt64> {
        let overhang = s.rcr & RTL8139ReceiveConfig.noWrap != 0 ? RTL8139.largestPacket : 0
        return Self.range(UInt64(s.rbstart), s.ringLength + overhang)
    }

    public func permits(_ range: Range<UInt64>) -> Bool {
        allowed.contains { $0.lowerBound <= range.lowerBound && range.upperBound <= $0.upperBound }
            && !forbidden.contains { $0.overlaps(range) }
    }

    static func range(_ start: UInt64, _ count: Int) -> Range<UInt64> {
        let (end, overflow) = start.addingReportingOverflow(UInt64(count))
        return overflow ? start..<UInt64.max : start..<end
    }
}
