// The NE2000's kinds of DMA are the DP8390 module's; the ABI only fixes their codes.
@_exported import DP8390

/// Swift mirror of `protocol/include/vpio_ring.h`: the same constants and byte layouts, decoded
/// and encoded field by field (no struct punning), so the host never trusts guest bytes to be
/// well-formed. Offsets are checked against the C header by the golden-vector tests.
public enum VPIORing {
    public static let magic: UInt32 = 0x5249_5056  // "VPIR"
    /// 2: intent kinds 4 and 5, the RTL8139's bus-master DMA (same bytes as version 1).
    public static let version: UInt16 = 2
    public static let pageSize = 4096
    public static let recordSize = 64
    public static let capacity = 256
    public static let pages = 1 + capacity * recordSize / pageSize
    public static let bytes = pages * pageSize

    /// Byte offsets of the header fields (page 0).
    public enum HeaderOffset {
        public static let magic = 0
        public static let version = 4
        public static let recordSize = 6
        public static let capacity = 8
        public static let agentPID = 12
        public static let head = 64
        public static let accessesSeen = 192
        public static let intentsWritten = 200
        public static let unseenSites = 208
        public static let size = 256
    }

    /// Byte offset of record slot `index` in the ring area.
    public static func recordOffset(slot index: Int) -> Int { pageSize + index * recordSize }
}

/// The ring header as read from guest memory.
public struct RingHeader: Equatable, Sendable {
    public var magic: UInt32
    public var version: UInt16
    public var recordSize: UInt16
    public var capacity: UInt32
    public var agentPID: UInt32
    public var head: UInt64
    public var accessesSeen: UInt64
    public var intentsWritten: UInt64
    public var unseenSites: UInt64

    public init(magic: UInt32 = VPIORing.magic, version: UInt16 = VPIORing.version,
                recordSize: UInt16 = UInt16(VPIORing.recordSize), capacity: UInt32 = UInt32(VPIORing.capacity),
                agentPID: UInt32 = 0, head: UInt64 = 0, accessesSeen: UInt64 = 0,
                intentsWritten: UInt64 = 0, unseenSites: UInt64 = 0) {
        self.magic = magic
        self.version = version
        self.recordSize = recordSize
        self.capacity = capacity
        self.agentPID = agentPID
        self.head = head
        self.accessesSeen = accessesSeen
        self.intentsWritten = intentsWritten
        self.unseenSites = unseenSites
    }

    /// Decodes the first 256 bytes of page 0; nil if fewer bytes were given.
    public init?(bytes: [UInt8]) {
        guard bytes.count >= VPIORing.HeaderOffset.size else { return nil }
        let b = LittleEndianBytes(bytes)
        magic = b.u32(VPIORing.HeaderOffset.magic)
        version = b.u16(VPIORing.HeaderOffset.version)
        recordSize = b.u16(VPIORing.HeaderOffset.recordSize)
        capacity = b.u32(VPIORing.HeaderOffset.capacity)
        agentPID = b.u32(VPIORing.HeaderOffset.agentPID)
        head = b.u64(VPIORing.HeaderOffset.head)
        accessesSeen = b.u64(VPIORing.HeaderOffset.accessesSeen)
        intentsWritten = b.u64(VPIORing.HeaderOffset.intentsWritten)
        unseenSites = b.u64(VPIORing.HeaderOffset.unseenSites)
    }

    /// Whether the header describes the ring this host understands.
    public var isCompatible: Bool {
        magic == VPIORing.magic && version == VPIORing.version && Int(recordSize) == VPIORing.recordSize
            && Int(capacity) == VPIORing.capacity
    }

    public func encode() -> [UInt8] {
        var b = LittleEndianBytes(count: VPIORing.HeaderOffset.size)
        b.put32(VPIORing.HeaderOffset.magic, magic)
        b.put16(VPIORing.HeaderOffset.version, version)
        b.put16(VPIORing.HeaderOffset.recordSize, recordSize)
        b.put32(VPIORing.HeaderOffset.capacity, capacity)
        b.put32(VPIORing.HeaderOffset.agentPID, agentPID)
        b.put64(VPIORing.HeaderOffset.head, head)
        b.put64(VPIORing.HeaderOffset.accessesSeen, accessesSeen)
        b.put64(VPIORing.HeaderOffset.intentsWritten, intentsWritten)
        b.put64(VPIORing.HeaderOffset.unseenSites, unseenSites)
        return b.bytes
    }
}

/// A DMA intent's kind on the wire (VPIO_DMA_*). The NE2000's three are the DP8390 module's `DMAKind`
/// (the one definition); the RTL8139's two are bus-master DMA into guest memory, whose `start` is a
/// guest-physical address.
public enum IntentKind: UInt8, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    case remoteRead = 1, remoteWrite = 2, transmit = 3
    /// An RTL8139 transmit: the device reads `count` bytes at TSAD (`start`); `command` is the descriptor.
    case busTransmit = 4
    /// The RTL8139's receiver is left on a ring: it may write `count` bytes at RBSTART (`start`);
    /// `command` is the register written (the offset of CR, RCR or RBSTART).
    case receiveRing = 5

    /// The intent a DP8390 start carries; nil for a receive, which the wire starts, not a command.
    public init?(_ kind: DMAKind) {
        switch kind {
        case .remoteRead: self = .remoteRead
        case .remoteWrite: self = .remoteWrite
        case .transmit: self = .transmit
        case .receive: return nil
        }
    }

    public var description: String {
        switch self {
        case .remoteRead: DMAKind.remoteRead.rawValue
        case .remoteWrite: DMAKind.remoteWrite.rawValue
        case .transmit: DMAKind.transmit.rawValue
        case .busTransmit: "bus-transmit"
        case .receiveRing: "receive-ring"
        }
    }
}

/// One decoded 64-byte ring record.
public struct RingRecord: Equatable, Sendable {
    public enum Body: Equatable, Sendable {
        case dmaIntent(kind: IntentKind, command: UInt8, start: UInt32, count: UInt32, intentIndex: UInt64, accessIndex: UInt64)
        case state(accesses: UInt64, dmaIntents: UInt64, reusable: Bool, unsure: Bool, eventsLost: UInt64)
        case heartbeat(uptimeNanoseconds: UInt64, accesses: UInt64)
        case error(code: UInt32, detail: UInt32, text: String)
    }

    /// Why 64 bytes are not a record the host accepts.
    public enum DecodeError: Error, Equatable, Sendable {
        case wrongSize(Int)
        case unknownType(UInt16)
        case unknownDMAKind(UInt8)
    }

    public enum RecordType: UInt16, Sendable {
        case dmaIntent = 1, state = 2, heartbeat = 3, error = 4
    }

    /// Slot claim number + 1; 0 is an empty slot.
    public var sequence: UInt64
    public var flags: UInt16
    public var site: UInt32
    public var timeNanoseconds: UInt64
    public var body: Body

    public init(sequence: UInt64, flags: UInt16 = 0, site: UInt32 = 0, timeNanoseconds: UInt64 = 0, body: Body) {
        self.sequence = sequence
        self.flags = flags
        self.site = site
        self.timeNanoseconds = timeNanoseconds
        self.body = body
    }

    /// The sequence word alone: a reader checks it before trusting the rest of the slot.
    public static func sequence(of bytes: [UInt8]) -> UInt64? {
        bytes.count >= 8 ? LittleEndianBytes(bytes).u64(0) : nil
    }

    public init(bytes: [UInt8]) throws(DecodeError) {
        guard bytes.count == VPIORing.recordSize else { throw .wrongSize(bytes.count) }
        let b = LittleEndianBytes(bytes)
        sequence = b.u64(0)
        flags = b.u16(10)
        site = b.u32(12)
        timeNanoseconds = b.u64(16)
        let rawType = b.u16(8)
        guard let type = RecordType(rawValue: rawType) else { throw .unknownType(rawType) }
        switch type {
        case .dmaIntent:
            guard let kind = IntentKind(rawValue: b.u8(24)) else { throw .unknownDMAKind(b.u8(24)) }
            body = .dmaIntent(kind: kind, command: b.u8(25), start: b.u32(28), count: b.u32(32),
                              intentIndex: b.u64(40), accessIndex: b.u64(48))
        case .state:
            body = .state(accesses: b.u64(24), dmaIntents: b.u64(32), reusable: b.u32(40) != 0,
                          unsure: b.u32(44) != 0, eventsLost: b.u64(48))
        case .heartbeat:
            body = .heartbeat(uptimeNanoseconds: b.u64(24), accesses: b.u64(32))
        case .error:
            let text = bytes[32..<64].prefix { $0 != 0 }.map { $0 >= 0x20 && $0 < 0x7F ? Character(UnicodeScalar($0)) : "?" }
            body = .error(code: b.u32(24), detail: b.u32(28), text: String(text))
        }
    }

    public func encode() -> [UInt8] {
        var b = LittleEndianBytes(count: VPIORing.recordSize)
        b.put64(0, sequence)
        b.put16(10, flags)
        b.put32(12, site)
        b.put64(16, timeNanoseconds)
        switch body {
        case let .dmaIntent(kind, command, start, count, intentIndex, accessIndex):
            b.put16(8, RecordType.dmaIntent.rawValue)
            b.put8(24, kind.rawValue)
            b.put8(25, command)
            b.put32(28, start)
            b.put32(32, count)
            b.put64(40, intentIndex)
            b.put64(48, accessIndex)
        case let .state(accesses, dmaIntents, reusable, unsure, eventsLost):
            b.put16(8, RecordType.state.rawValue)
            b.put64(24, accesses)
            b.put64(32, dmaIntents)
            b.put32(40, reusable ? 1 : 0)
            b.put32(44, unsure ? 1 : 0)
            b.put64(48, eventsLost)
        case let .heartbeat(uptime, accesses):
            b.put16(8, RecordType.heartbeat.rawValue)
            b.put64(24, uptime)
            b.put64(32, accesses)
        case let .error(code, detail, text):
            b.put16(8, RecordType.error.rawValue)
            b.put32(24, code)
            b.put32(28, detail)
            for (i, byte) in text.utf8.prefix(31).enumerated() { b.put8(32 + i, byte) }
        }
        return b.bytes
    }
}

/// The vendor-specific PCI capability through which the agent registers its ring.
public enum VPIOCapability {
    public static let id: UInt8 = 0x09
    public static let offset = 0x40
    /// 2: `anomalies` at 88 (version 1 was 88 bytes, ending at `last_error`).
    public static let version: UInt8 = 2
    public static let maxPages = 8
    public static let length = 92

    /// Field offsets inside the capability.
    public enum Field {
        public static let status = 4
        public static let command = 8
        public static let pageCount = 12
        public static let pages = 16
        public static let violations = 80
        public static let lastError = 84
        public static let anomalies = 88
    }

    public enum Command: UInt32 { case register = 1, unregister = 2 }

    public struct Status: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let registered = Status(rawValue: 0x1)
        public static let rejected = Status(rawValue: 0x2)
        public static let fallback = Status(rawValue: 0x4)
        public static let modeShift: UInt32 = 8
    }

    public enum RegistrationError: UInt32, Error, Sendable {
        case none = 0, pageCount = 1, pageAddress = 2, badHeader = 3
    }
}

/// Little-endian field access into a byte array (bounds are the caller's: fixed layouts only).
struct LittleEndianBytes {
    private(set) var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }

    func u8(_ at: Int) -> UInt8 { bytes[at] }
    func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) | UInt32(u16(at + 2)) << 16 }
    func u64(_ at: Int) -> UInt64 { UInt64(u32(at)) | UInt64(u32(at + 4)) << 32 }

    mutating func put8(_ at: Int, _ v: UInt8) { bytes[at] = v }
    mutating func put16(_ at: Int, _ v: UInt16) {
        bytes[at] = UInt8(v & 0xFF)
        bytes[at + 1] = UInt8(v >> 8)
    }
    mutating func put32(_ at: Int, _ v: UInt32) {
        put16(at, UInt16(v & 0xFFFF))
        put16(at + 2, UInt16(v >> 16))
    }
    mutating func put64(_ at: Int, _ v: UInt64) {
        put32(at, UInt32(v & 0xFFFF_FFFF))
        put32(at + 4, UInt32(v >> 32))
    }
}
