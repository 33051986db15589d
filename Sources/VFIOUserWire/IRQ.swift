/// VFIO_USER_DEVICE_GET_IRQ_INFO, request and reply share the layout.
public struct IRQInfo: Equatable, Sendable {
    public static let size = 16

    public struct Flags: OptionSet, Equatable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let eventfd = Flags(rawValue: 1)
        public static let maskable = Flags(rawValue: 2)
        public static let automasked = Flags(rawValue: 4)
        public static let noResize = Flags(rawValue: 8)
    }

    public var flags: Flags
    public var index: UInt32
    public var count: UInt32

    public init(flags: Flags, index: UInt32, count: UInt32) {
        self.flags = flags
        self.index = index
        self.count = count
    }

    public static func requestedIndex(_ payload: ArraySlice<UInt8>) throws -> UInt32 {
        var r = ByteReader(payload)
        let argsz = try r.u32()
        guard argsz >= UInt32(size) else { throw WireError.invalidField("GET_IRQ_INFO argsz \(argsz)") }
        _ = try r.u32()
        return try r.u32()
    }

    public init(decoding payload: ArraySlice<UInt8>) throws {
        var r = ByteReader(payload)
        _ = try r.u32()
        flags = Flags(rawValue: try r.u32())
        index = try r.u32()
        count = try r.u32()
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(Self.size))
        w.u32(flags.rawValue)
        w.u32(index)
        w.u32(count)
        return w.bytes
    }
}

/// IRQ indexes of a PCI device (VFIO_PCI_*_IRQ_INDEX).
public enum IRQIndex: UInt32, Sendable {
    case intx = 0, msi, msix, err, req
    public static let count: UInt32 = 5
}

/// VFIO_USER_DEVICE_SET_IRQS request: one data type and one action.
public struct SetIRQsRequest: Equatable, Sendable {
    public static let headerSize = 20

    public enum DataType: Equatable, Sendable {
        case none
        /// One byte per vector in `start..<start+count`.
        case bool([Bool])
        /// Descriptors arrive as SCM_RIGHTS, one per vector (none means "disable").
        case eventfd
    }

    public enum Action: UInt32, Equatable, Sendable {
        case mask = 0x08
        case unmask = 0x10
        case trigger = 0x20
    }

    public var index: UInt32
    public var start: UInt32
    public var count: UInt32
    public var data: DataType
    public var action: Action

    public init(index: UInt32, start: UInt32, count: UInt32, data: DataType, action: Action) {
        self.index = index
        self.start = start
        self.count = count
        self.data = data
        self.action = action
    }

    var flags: UInt32 {
        let dataBits: UInt32
        switch data {
        case .none: dataBits = 1
        case .bool: dataBits = 2
        case .eventfd: dataBits = 4
        }
        return dataBits | action.rawValue
    }

    public init(decoding payload: ArraySlice<UInt8>) throws {
        var r = ByteReader(payload)
        let argsz = try r.u32()
        let flags = try r.u32()
        index = try r.u32()
        start = try r.u32()
        count = try r.u32()
        guard argsz >= UInt32(Self.headerSize) else { throw WireError.invalidField("SET_IRQS argsz \(argsz)") }
        // Exactly one data-type bit and exactly one action bit.
        guard let act = Action(rawValue: flags & 0x38), flags & ~0x3F == 0 else {
            throw WireError.invalidField("SET_IRQS flags 0x\(String(flags, radix: 16))")
        }
        action = act
        switch flags & 0x7 {
        case 1: data = .none
        case 4: data = .eventfd
        case 2:
            guard count <= 4096 else { throw WireError.invalidField("SET_IRQS bool count \(count)") }
            data = .bool(try r.take(Int(count)).map { $0 != 0 })
        default: throw WireError.invalidField("SET_IRQS flags 0x\(String(flags, radix: 16))")
        }
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        var extra: [UInt8] = []
        if case let .bool(values) = data { extra = values.map { $0 ? 1 : 0 } }
        w.u32(UInt32(Self.headerSize + extra.count))
        w.u32(flags)
        w.u32(index)
        w.u32(start)
        w.u32(count)
        w.append(extra)
        return w.bytes
    }
}
