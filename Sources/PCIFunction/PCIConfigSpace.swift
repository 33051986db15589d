/// Who a PCI function says it is.
public struct PCIIdentity: Equatable, Sendable {
    public var vendorID: UInt16
    public var deviceID: UInt16
    public var classCode: UInt8
    public var subclass: UInt8
    public var programmingInterface: UInt8
    public var revision: UInt8
    public var subsystemVendorID: UInt16
    public var subsystemID: UInt16

    public init(vendorID: UInt16, deviceID: UInt16, classCode: UInt8, subclass: UInt8,
                programmingInterface: UInt8 = 0, revision: UInt8 = 0,
                subsystemVendorID: UInt16, subsystemID: UInt16) {
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.classCode = classCode
        self.subclass = subclass
        self.programmingInterface = programmingInterface
        self.revision = revision
        self.subsystemVendorID = subsystemVendorID
        self.subsystemID = subsystemID
    }

    /// The RealTek RTL8029 (NE2000-compatible PCI NIC), an Ethernet controller.
    public static let rtl8029 = PCIIdentity(vendorID: 0x10EC, deviceID: 0x8029, classCode: 0x02, subclass: 0x00,
                                            subsystemVendorID: 0x10EC, subsystemID: 0x8029)

    /// The RealTek RTL8139C, a bus-master Ethernet controller. Revision 0x10: Linux's 8139too takes
    /// revisions below 0x20 and leaves 8139C+ (0x20 and up) to 8139cp.
    public static let rtl8139 = PCIIdentity(vendorID: 0x10EC, deviceID: 0x8139, classCode: 0x02, subclass: 0x00, revision: 0x10,
                                            subsystemVendorID: 0x10EC, subsystemID: 0x8139)
}

/// The 256-byte type-0 configuration space of a PCI function with I/O or 32-bit memory BARs and INTx pin A.
///
/// Writes go through a per-byte write mask, so every width and alignment behaves like hardware
/// without special cases: read-only bytes keep their value, a BAR keeps its size alignment and its
/// space bits. The interrupt-status bit is not stored: it is the device's line, given at read.
/// Offsets 0x40–0xFF stay free for capabilities.
public struct PCIConfigSpace: Equatable, Sendable {
    public static let size = 256

    /// Register offsets (PCI Local Bus spec, type-0 header).
    public enum Offset {
        public static let vendorID = 0x00
        public static let deviceID = 0x02
        public static let command = 0x04
        public static let status = 0x06
        public static let revision = 0x08
        public static let classCode = 0x09
        public static let cacheLineSize = 0x0C
        public static let latencyTimer = 0x0D
        public static let bar0 = 0x10
        public static let subsystemVendorID = 0x2C
        public static let subsystemID = 0x2E
        public static let romBase = 0x30
        public static let capabilitiesPointer = 0x34
        public static let interruptLine = 0x3C
        public static let interruptPin = 0x3D
    }

    /// Command register bits the function implements.
    public enum Command {
        public static let ioSpace: UInt16 = 0x0001
        public static let memorySpace: UInt16 = 0x0002
        public static let busMaster: UInt16 = 0x0004
        public static let interruptDisable: UInt16 = 0x0400
    }

    /// Status bit 3: an INTx is pending in the function.
    public static let statusInterrupt: UInt16 = 0x0008

    /// One base address register: its size and whether it decodes I/O ports or memory (32-bit, not prefetchable).
    public struct BAR: Equatable, Sendable {
        public enum Space: Equatable, Sendable { case io, memory }
        public var size: UInt32
        public var space: Space

        public init(size: UInt32, space: Space) {
            self.size = size
            self.space = space
        }
    }

    private var bytes: [UInt8]
    private var writeMask: [UInt8]
    public let bars: [Int: BAR]
    public var bar0Size: UInt32 { bars[0]?.size ?? 0 }

    /// One I/O BAR of `bar0Size` bytes.
    public init(identity: PCIIdentity, bar0Size: UInt32) {
        self.init(identity: identity, bars: [0: BAR(size: bar0Size, space: .io)])
    }

    /// - Parameter bars: by index 0–5; sizes are powers of two, at least 4 (I/O) or 16 (memory).
    public init(identity: PCIIdentity, bars: [Int: BAR]) {
        precondition(bars.allSatisfy { (0..<6).contains($0.key) && $0.value.size >= ($0.value.space == .io ? 4 : 16)
            && $0.value.size & ($0.value.size - 1) == 0 }, "BAR sizes must be powers of two")
        self.bars = bars
        bytes = [UInt8](repeating: 0, count: Self.size)
        writeMask = [UInt8](repeating: 0, count: Self.size)
        put16(Offset.vendorID, identity.vendorID)
        put16(Offset.deviceID, identity.deviceID)
        bytes[Offset.revision] = identity.revision
        bytes[Offset.classCode] = identity.programmingInterface
        bytes[Offset.classCode + 1] = identity.subclass
        bytes[Offset.classCode + 2] = identity.classCode
        put16(Offset.subsystemVendorID, identity.subsystemVendorID)
        put16(Offset.subsystemID, identity.subsystemID)
        bytes[Offset.interruptPin] = 0x01  // INTA#

        let decodes = bars.values.contains { $0.space == .memory } ? Command.memorySpace : 0
        let command = Command.ioSpace | decodes | Command.busMaster | Command.interruptDisable
        writeMask[Offset.command] = UInt8(command & 0xFF)
        writeMask[Offset.command + 1] = UInt8(command >> 8)
        writeMask[Offset.cacheLineSize] = 0xFF
        writeMask[Offset.latencyTimer] = 0xFF
        writeMask[Offset.interruptLine] = 0xFF
        // Address bits above the size are writable; the space bits (I/O: bit 0 set; memory: 0000) are not.
        for (index, bar) in bars {
            let at = Offset.bar0 + 4 * index
            bytes[at] = bar.space == .io ? 0x01 : 0x00
            let mask = ~(bar.size - 1) & (bar.space == .io ? ~UInt32(0x3) : ~UInt32(0xF))
            for i in 0..<4 { writeMask[at + i] = UInt8(truncatingIfNeeded: mask >> (8 * UInt32(i))) }
        }
    }

    /// Reads `count` bytes at `offset`; nil when the range leaves the config space.
    public func read(offset: Int, count: Int, interruptPending: Bool) -> [UInt8]? {
        guard offset >= 0, count > 0, count <= Self.size - offset else { return nil }
        var out = Array(bytes[offset..<offset + count])
        if interruptPending, offset <= Offset.status, Offset.status < offset + count {
            out[Offset.status - offset] |= UInt8(Self.statusInterrupt)
        }
        return out
    }

    /// Writes `data` at `offset` through the write mask; false when the range leaves the config space.
    @discardableResult
    public mutating func write(offset: Int, data: [UInt8]) -> Bool {
        guard offset >= 0, !data.isEmpty, data.count <= Self.size - offset else { return false }
        for (i, value) in data.enumerated() {
            let mask = writeMask[offset + i]
            bytes[offset + i] = (bytes[offset + i] & ~mask) | (value & mask)
        }
        return true
    }

    /// Status bit 4: the capabilities pointer at 0x34 is valid.
    public static let statusCapabilityList: UInt16 = 0x0010

    /// Adds a capability at `offset` (0x40–0xFF, dword aligned): writes its ID and length byte,
    /// links it at the head of the capability list, and makes `writable` (offsets relative to the
    /// capability) writable by the guest. Returns false when it does not fit.
    @discardableResult
    public mutating func addCapability(id: UInt8, at offset: Int, length: Int, writable: Range<Int>) -> Bool {
        guard offset >= 0x40, offset % 4 == 0, length >= 4, length <= Self.size - offset,
              writable.lowerBound >= 2, writable.upperBound <= length else { return false }
        bytes[offset] = id
        bytes[offset + 1] = bytes[Offset.capabilitiesPointer]
        bytes[offset + 2] = UInt8(truncatingIfNeeded: length)
        bytes[Offset.capabilitiesPointer] = UInt8(offset)
        bytes[Offset.status] |= UInt8(Self.statusCapabilityList)
        for i in writable { writeMask[offset + i] = 0xFF }
        return true
    }

    /// Device-side update of bytes the guest may not write (status words, counters).
    public mutating func store(offset: Int, data: [UInt8]) {
        precondition(offset >= 0 && offset + data.count <= Self.size, "store outside config space")
        bytes.replaceSubrange(offset..<offset + data.count, with: data)
    }

    /// The stored bytes, without the interrupt-status overlay.
    public func load(offset: Int, count: Int) -> [UInt8] {
        precondition(offset >= 0 && count >= 0 && offset + count <= Self.size, "load outside config space")
        return Array(bytes[offset..<offset + count])
    }

    public var command: UInt16 { get16(Offset.command) }
    public var ioSpaceEnabled: Bool { command & Command.ioSpace != 0 }
    public var interruptDisabled: Bool { command & Command.interruptDisable != 0 }
    public var busMasterEnabled: Bool { command & Command.busMaster != 0 }

    /// The I/O port base the guest programmed into BAR0.
    public var bar0Base: UInt32 { get32(Offset.bar0) & ~UInt32(0x3) }

    private func get16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    private func get32(_ at: Int) -> UInt32 { UInt32(get16(at)) | UInt32(get16(at + 2)) << 16 }
    private mutating func put16(_ at: Int, _ v: UInt16) {
        bytes[at] = UInt8(v & 0xFF)
        bytes[at + 1] = UInt8(v >> 8)
    }
}
