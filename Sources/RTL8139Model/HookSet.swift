import DeviceBus
import RTL8139
import VPIOMonitor

/// Which RTL8139 accesses trap in the cooperative set: what an I/O permission bitmap can express (port
/// and direction). Only writes, and only to what starts a DMA (TSD0–3; CR when it enables TE with
/// descriptors pending) or moves the ring the receiver writes (RBSTART, RCR's length and WRAP, CR's RE
/// and RST). TSAD0–3 need not trap: the check reads them from the device when a transmit starts.
/// Everything else — every read, TSAD, CAPR, ISR, IMR, the EEPROM, the PHY — runs without an exit. The
/// adversarial test lets only these writes reach `RTL8139DMACheck`.
public enum RTL8139HookSet {
    /// Each is needed: the removal test drops one at a time and finds a DMA outside.
    public static let cooperativeWrites: [ClosedRange<UInt64>] = [
        RTL8139Register.tsd...(RTL8139Register.tsd + 15),
        RTL8139Register.rbstart...(RTL8139Register.rbstart + 3),
        RTL8139Register.cr...RTL8139Register.cr,
        RTL8139Register.rcr...(RTL8139Register.rcr + 3),
    ]

    /// The seed's VPIO: the VMM judges with its own full model of the steering registers, which cannot
    /// read the device, so it must also see every write of what steers a DMA — TSAD0–3 too.
    public static let vmmModelWrites = cooperativeWrites + [RTL8139Register.tsad...(RTL8139Register.tsad + 15)]

    /// The writes a mode traps in I/O space; nil: every access (emulated). Passthrough traps none;
    /// on-demand (the NE2000's: disarmed while the guest owns all buffer memory) has no RTL8139 form, since
    /// this device's DMA reaches guest memory, which a guest never owns wholly (the ring is in it).
    public static func writes(for mode: Mode) -> [ClosedRange<UInt64>]? {
        switch mode {
        case .emulated: nil
        case .vmmModel: vmmModelWrites
        case .cooperative, .onDemand: cooperativeWrites
        case .passthrough: []
        }
    }

    /// Whether the access exits: a write any of whose bytes is a trapped port (of `set`).
    public static func traps(offset: UInt64, width: AccessWidth, direction: BusAccess.Direction,
                             set: [ClosedRange<UInt64>] = cooperativeWrites) -> Bool {
        guard direction == .write else { return false }
        let bytes = offset..<offset + UInt64(width.rawValue)
        return set.contains { $0.lowerBound < bytes.upperBound && bytes.lowerBound <= $0.upperBound }
    }
}
