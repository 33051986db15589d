import DeviceBus

/// Direction of one device access (the bus's own type).
public typealias AccessDirection = BusAccess.Direction

/// One guest access to BAR0 of the NE2000, as the device saw it: one element of `rep insl` is one access.
/// `value` is what was written, or what the device returned for a read (masked to `width`).
public struct PortAccess: Sendable, Hashable {
    public var direction: AccessDirection
    /// Offset within BAR0 (0x00–0x1F).
    public var offset: UInt8
    public var width: AccessWidth
    public var value: UInt32

    public init(_ direction: AccessDirection, offset: UInt8, width: AccessWidth = .byte, value: UInt32) {
        self.direction = direction
        self.offset = offset
        self.width = width
        self.value = value
    }

    /// A byte read of register/port `offset` that returned `value`.
    public static func read(_ offset: UInt8, _ value: UInt32 = 0, width: AccessWidth = .byte) -> PortAccess {
        PortAccess(.read, offset: offset, width: width, value: value)
    }

    /// A byte write of `value` to register/port `offset`.
    public static func write(_ offset: UInt8, _ value: UInt32, width: AccessWidth = .byte) -> PortAccess {
        PortAccess(.write, offset: offset, width: width, value: value)
    }

    /// Which NE2000 block the access hits, decoded as the device decodes it.
    public var port: BAR0.Block { BAR0.decode(offset: UInt64(offset), width: width) }

    /// The BAR0 ports the access covers (what an I/O permission bitmap checks).
    public var ports: Range<UInt64> { BAR0.ports(offset: UInt64(offset), width: width) }
}

/// One event of a guest's device stream: what the models are driven by.
///
/// Accesses are what the guest does; interrupt edges and resets are what a VMM sees without trapping
/// anything (it owns the interrupt line and initiates function resets), so every mode observes them.
public enum DeviceEvent: Sendable, Hashable {
    case access(PortAccess)
    /// The device's interrupt line changed level.
    case interrupt(asserted: Bool)
    /// PCI function reset (the VMM's doing): the same hardware reset as a read of the reset port.
    case reset
}
