/// VFIO_USER_DEVICE_GET_INFO reply.
public struct DeviceInfo: Equatable, Sendable {
    public static let size = 16
    public static let flagReset: UInt32 = 1
    public static let flagPCI: UInt32 = 2

    public var flags: UInt32
    public var regionCount: UInt32
    public var irqCount: UInt32

    public init(flags: UInt32, regionCount: UInt32, irqCount: UInt32) {
        self.flags = flags
        self.regionCount = regionCount
        self.irqCount = irqCount
    }

    /// Checks the request's argsz (the rest of a request is zero and ignored).
    public static func validateRequest(_ payload: ArraySlice<UInt8>) throws {
        var r = ByteReader(payload)
        let argsz = try r.u32()
        guard argsz >= UInt32(size) else { throw WireError.invalidField("GET_INFO argsz \(argsz)") }
    }

    public init(decoding payload: ArraySlice<UInt8>) throws {
        var r = ByteReader(payload)
        _ = try r.u32()
        flags = try r.u32()
        regionCount = try r.u32()
        irqCount = try r.u32()
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(Self.size))
        w.u32(flags)
        w.u32(regionCount)
        w.u32(irqCount)
        return w.bytes
    }
}

/// VFIO_USER_DEVICE_GET_REGION_INFO, request and reply share the layout.
public struct RegionInfo: Equatable, Sendable {
    public static let size = 32

    public struct Flags: OptionSet, Equatable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let read = Flags(rawValue: 1)
        public static let write = Flags(rawValue: 2)
        public static let mmap = Flags(rawValue: 4)
        public static let caps = Flags(rawValue: 8)
    }

    public var flags: Flags
    public var index: UInt32
    public var capabilityOffset: UInt32
    public var size: UInt64
    /// Offset for mmap of the region; 0 here, nothing is mappable.
    public var offset: UInt64

    public init(flags: Flags, index: UInt32, capabilityOffset: UInt32 = 0, size: UInt64, offset: UInt64 = 0) {
        self.flags = flags
        self.index = index
        self.capabilityOffset = capabilityOffset
        self.size = size
        self.offset = offset
    }

    /// Decodes a request; only argsz and index matter.
    public static func requestedIndex(_ payload: ArraySlice<UInt8>) throws -> UInt32 {
        var r = ByteReader(payload)
        let argsz = try r.u32()
        guard argsz >= UInt32(size) else { throw WireError.invalidField("GET_REGION_INFO argsz \(argsz)") }
        _ = try r.u32()
        return try r.u32()
    }

    public init(decoding payload: ArraySlice<UInt8>) throws {
        var r = ByteReader(payload)
        _ = try r.u32()
        flags = Flags(rawValue: try r.u32())
        index = try r.u32()
        capabilityOffset = try r.u32()
        size = try r.u64()
        offset = try r.u64()
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(Self.size))
        w.u32(flags.rawValue)
        w.u32(index)
        w.u32(capabilityOffset)
        w.u64(size)
        w.u64(offset)
        return w.bytes
    }
}
