/// VFIO_USER_DMA_MAP request: a range of guest memory backed by the fd sent with the message.
public struct DMAMapRequest: Equatable, Sendable {
    public static let size = 32

    public struct Flags: OptionSet, Equatable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let readable = Flags(rawValue: 1)
        public static let writable = Flags(rawValue: 2)
    }

    public var flags: Flags
    /// Offset of the range inside the fd.
    public var fileOffset: UInt64
    /// Guest (I/O virtual) address of the range.
    public var address: UInt64
    public var size: UInt64

    public init(flags: Flags, fileOffset: UInt64, address: UInt64, size: UInt64) {
        self.flags = flags
        self.fileOffset = fileOffset
        self.address = address
        self.size = size
    }

    public init(decoding payload: ArraySlice<UInt8>) throws {
        var r = ByteReader(payload)
        let argsz = try r.u32()
        guard argsz >= UInt32(Self.size) else { throw WireError.invalidField("DMA_MAP argsz \(argsz)") }
        flags = Flags(rawValue: try r.u32())
        fileOffset = try r.u64()
        address = try r.u64()
        size = try r.u64()
        guard flags.rawValue & ~0x3 == 0 else { throw WireError.invalidField("DMA_MAP flags \(flags.rawValue)") }
        guard size > 0, address.addingReportingOverflow(size).overflow == false,
              fileOffset.addingReportingOverflow(size).overflow == false
        else { throw WireError.invalidField("DMA_MAP range") }
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(Self.size))
        w.u32(flags.rawValue)
        w.u64(fileOffset)
        w.u64(address)
        w.u64(size)
        return w.bytes
    }
}

/// VFIO_USER_DMA_UNMAP request. The dirty-bitmap variant is not supported (no migration).
public struct DMAUnmapRequest: Equatable, Sendable {
    public static let size = 24
    public static let getDirtyBitmapFlag: UInt32 = 1
    public static let unmapAllFlag: UInt32 = 2

    public var flags: UInt32
    public var address: UInt64
    public var size: UInt64

    public init(flags: UInt32 = 0, address: UInt64, size: UInt64) {
        self.flags = flags
        self.address = address
        self.size = size
    }

    public var unmapsAll: Bool { flags & Self.unmapAllFlag != 0 }

    public init(decoding payload: ArraySlice<UInt8>) throws {
        var r = ByteReader(payload)
        let argsz = try r.u32()
        guard argsz >= UInt32(Self.size) else { throw WireError.invalidField("DMA_UNMAP argsz \(argsz)") }
        flags = try r.u32()
        address = try r.u64()
        size = try r.u64()
        guard flags & ~Self.unmapAllFlag == 0 else { throw WireError.invalidField("DMA_UNMAP flags \(flags)") }
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(Self.size))
        w.u32(flags)
        w.u64(address)
        w.u64(size)
        return w.bytes
    }
}
