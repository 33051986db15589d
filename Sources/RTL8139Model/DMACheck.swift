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

    /// What a write sets going: the transmits it starts and the ring it leaves the receiver on, each
    /// checked, and the verdict on the write.
    public struct Examination: Equatable, Sendable {
        /// Descriptors whose transmit the write starts.
        public var transmits: [Int]
        /// The ring the write leaves the receiver on (nil: it does not steer the ring, or the receiver is off).
        public var ring: Range<UInt64>?
        public var verdict: Verdict
        /// DMA starts and ring setups checked.
        public var checks: Int { transmits.count + (ring == nil ? 0 : 1) }
    }

    /// Judges a write before it reaches the device, whose registers are `device` now.
    public func judge(offset: UInt64, width: AccessWidth, value: UInt32, device: RTL8139State) -> Verdict {
        examine(offset: offset, width: width, value: value, device: device).verdict
    }

    /// The DMAs a write would start, with the verdict: `judge`, itemised.
    public func examine(offset: UInt64, width: AccessWidth, value: UInt32, device: RTL8139State) -> Examination {
        var next = device
        // The device's own rules for how the bytes land (RTL8139State), so the check cannot drift from it.
        next.applySteeringWrite(offset: offset, width: width, value: value)
        let written = offset..<offset + UInt64(width.rawValue)
        let touches = { (range: Range<UInt64>) in written.overlaps(range) }
        let command = touches(RTL8139Register.cr..<RTL8139Register.cr + 1)
        let started = (0..<4).filter { index in
            next.transmitEnabled && next.tsd[index] & RTL8139TransmitStatus.own == 0
                && (command || touches(RTL8139Register.tsd(index)..<RTL8139Register.tsd(index) + 4))
        }
        let denied = started.compactMap { index -> TransmitDenial? in
            let range = Self.range(UInt64(next.tsad[index]), Int(next.tsd[index] & RTL8139TransmitStatus.sizeMask))
            return permits(range) ? nil : TransmitDenial(descriptor: index, range: range)
        }
        let steersRing = command || touches(RTL8139Register.rbstart..<RTL8139Register.rbstart + 4)
            || touches(RTL8139Register.rcr..<RTL8139Register.rcr + 4)
        let ring = next.receiveEnabled && steersRing ? ringRange(next) : nil
        let ringDenied = ring.flatMap { permits($0) ? nil : $0 }
        let verdict: Verdict = denied.isEmpty && ringDenied == nil ? .pass : .deny(transmits: denied, ring: ringDenied)
        return Examination(transmits: started, ring: ring, verdict: verdict)
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
