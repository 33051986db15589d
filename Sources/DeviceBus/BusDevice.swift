/// Width of one device access, in bytes. One element of a string instruction is one access.
public enum AccessWidth: Int, Sendable, CaseIterable {
    case byte = 1
    case word = 2
    case dword = 4

    /// Mask of the bits an access of this width carries.
    public var mask: UInt32 {
        switch self {
        case .byte: 0xFF
        case .word: 0xFFFF
        case .dword: 0xFFFF_FFFF
        }
    }
}

/// An interrupt line a device drives. The device reports level changes; whoever owns the line
/// (the vfio-user server, a test, a monitor) decides what an edge means.
public final class InterruptLine {
    public private(set) var isAsserted = false
    private let onChange: (Bool) -> Void

    public init(onChange: @escaping (Bool) -> Void = { _ in }) {
        self.onChange = onChange
    }

    /// Sets the level; the owner hears only real changes.
    public func set(_ asserted: Bool) {
        guard asserted != isAsserted else { return }
        isAsserted = asserted
        onChange(asserted)
    }
}

/// The black box every device backend is: register reads and writes at (region, offset, width),
/// an interrupt line handed in at creation, and reset. Nothing outside a backend touches its fields,
/// so the same monitor and tests run against any backend, real hardware included.
///
/// Accesses outside what the device decodes have a defined result (reads give all ones, writes are
/// dropped) and never trap: the guest chooses offsets, not us.
public protocol BusDevice: AnyObject {
    /// Size in bytes of each region the device decodes, by region index (PCI BAR number).
    var regionSizes: [UInt32: UInt32] { get }
    /// The regions that are memory BARs (MMIO); the others decode I/O ports.
    var memoryRegions: Set<UInt32> { get }
    func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32
    func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32)
    /// Power-on / PCI function reset.
    func reset()
}

extension BusDevice {
    public var memoryRegions: Set<UInt32> { [] }
}

/// Where frames from the wire go: a NIC, or what hands them on to one.
public protocol FrameReceiver: AnyObject {
    /// False while a maximum-sized frame would not fit (the receive ring is full). The packet backend
    /// takes a frame from its peer only while this is true: back-pressure instead of loss. A receiver
    /// that is stopped says true and discards, as the hardware would.
    var canReceiveFrame: Bool { get }
    /// Delivers one frame from the wire (no FCS). Returns false when the device discarded it
    /// (receiver stopped, address filter, no room).
    @discardableResult
    func receive(frame: [UInt8]) -> Bool
}

/// A NIC on the bus: frames arrive from the wire and leave through the sink given at creation.
public protocol NetworkBusDevice: BusDevice, FrameReceiver {}

/// Where a NIC puts a frame it transmits.
public typealias FrameSink = ([UInt8]) -> Void

/// One device access as monitors see it: a read with the value the device returned, or a write
/// with the value the guest wrote.
public struct BusAccess: Equatable, Sendable {
    public enum Direction: UInt8, Sendable, Codable {
        case read = 0
        case write = 1
    }

    public var direction: Direction
    public var region: UInt32
    public var offset: UInt64
    public var width: AccessWidth
    public var value: UInt32

    public init(direction: Direction, region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) {
        self.direction = direction
        self.region = region
        self.offset = offset
        self.width = width
        self.value = value
    }
}
