import DeviceBus
import NE2000Model

/// The binary trace format: a device's exact access stream, and the frames the wire handed it, compact
/// enough to commit as fixtures.
///
/// ```
/// header   "VPTR" (4 bytes) · version UInt16 LE (= 2) · reserved UInt16 (= 0)
/// record   tag (1 byte) [· value, `width` bytes little-endian]
/// tag      bit 7 write · bits 6–5 width (0: 1, 1: 2, 2: 4 bytes; 3: control) · bits 4–0 offset in BAR0
/// control  tag 0x60 interrupt line low · 0x61 line high · 0x62 function reset (no value; bit 7 clear)
///          tag 0x63 frame arrived (version 2) · length UInt16 LE · the frame's bytes (no FCS)
/// ```
/// Records follow in the order the device saw them; a frame is recorded as the NIC is handed it, before
/// anything it makes the device do. A 4-byte data-port read costs 5 bytes. Version 1 (no frame records)
/// is still read.
public enum AccessTrace {
    public static let magic: [UInt8] = Array("VPTR".utf8)
    public static let version: UInt16 = 2
    /// The versions the decoder reads.
    public static let readableVersions: ClosedRange<UInt16> = 1...2
    public static let headerSize = 8
    /// The longest frame a record holds (its length field's range); a wire frame is far shorter.
    public static let maximumFrameLength = Int(UInt16.max)

    static let writeBit: UInt8 = 0x80
    static let widthShift: UInt8 = 5
    static let controlWidthCode: UInt8 = 3
    static let interruptLow: UInt8 = 0x60
    static let interruptHigh: UInt8 = 0x61
    static let functionReset: UInt8 = 0x62
    static let frameArrived: UInt8 = 0x63
}

/// One record of a trace: what the device saw on its bus, or a frame the wire handed it. The models are
/// fed only the events; a differential replay also needs the frames.
public enum TraceRecord: Sendable, Hashable {
    case event(DeviceEvent)
    case frameArrived([UInt8])
}

/// Why a trace could not be read. Decoding never traps on bad input.
public enum TraceError: Error, Equatable, CustomStringConvertible {
    case truncatedHeader(length: Int)
    case badMagic([UInt8])
    case unsupportedVersion(UInt16)
    /// A record's value runs past the end of the data.
    case truncatedRecord(offset: Int)
    /// A tag no writer of the trace's version produces.
    case invalidTag(UInt8, offset: Int)

    public var description: String {
        switch self {
        case .truncatedHeader(let length): "not a VPIO trace: \(length) bytes, shorter than the 8-byte header"
        case .badMagic(let bytes): "not a VPIO trace: magic \(bytes.map { String($0, radix: 16) }) is not \"VPTR\""
        case .unsupportedVersion(let v): "unsupported trace version \(v) (this reader knows 1 and 2)"
        case .truncatedRecord(let offset): "trace truncated: the record at byte \(offset) is incomplete"
        case .invalidTag(let tag, let offset): "invalid record tag 0x\(String(tag, radix: 16)) at byte \(offset)"
        }
    }
}

/// Appends records to an in-memory trace; the owner moves the bytes out (`takeBytes`) to a file as it likes.
public struct TraceEncoder: Sendable {
    public private(set) var bytes: [UInt8]

    /// Starts a trace with its header (`version` 1 only to write fixtures for the old reader's format).
    public init(reservingCapacity capacity: Int = 1 << 16, version: UInt16 = AccessTrace.version) {
        bytes = []
        bytes.reserveCapacity(capacity)
        bytes += AccessTrace.magic
        bytes += [UInt8(version & 0xFF), UInt8(version >> 8), 0, 0]
    }

    public mutating func append(_ event: DeviceEvent) {
        switch event {
        case .access(let a):
            let code: UInt8 = switch a.width { case .byte: 0; case .word: 1; case .dword: 2 }
            let direction: UInt8 = a.direction == .write ? AccessTrace.writeBit : 0
            bytes.append(direction | code << AccessTrace.widthShift | a.offset & 0x1F)
            for i in 0..<a.width.rawValue { bytes.append(UInt8(truncatingIfNeeded: a.value >> (8 * UInt32(i)))) }
        case .interrupt(let asserted):
            bytes.append(asserted ? AccessTrace.interruptHigh : AccessTrace.interruptLow)
        case .reset:
            bytes.append(AccessTrace.functionReset)
        }
    }

    /// A frame the wire handed the NIC; one longer than `maximumFrameLength` keeps only its start.
    public mutating func append(frameArrived frame: [UInt8]) {
        let length = min(frame.count, AccessTrace.maximumFrameLength)
        bytes += [AccessTrace.frameArrived, UInt8(length & 0xFF), UInt8(length >> 8)]
        bytes += frame.prefix(length)
    }

    public mutating func append(_ record: TraceRecord) {
        switch record {
        case .event(let event): append(event)
        case .frameArrived(let frame): append(frameArrived: frame)
        }
    }

    /// Hands out what was encoded so far (the header first time) and keeps encoding from empty.
    public mutating func takeBytes() -> [UInt8] {
        defer { bytes.removeAll(keepingCapacity: true) }
        return bytes
    }
}

/// Reads a trace, validating the header first and each record as it goes.
public struct TraceDecoder: Sendable {
    private let bytes: [UInt8]
    private var position: Int
    /// The trace's format version (from its header).
    public let version: UInt16

    /// - Throws: `TraceError` when the header is short, the magic wrong or the version unknown.
    public init(bytes: [UInt8]) throws(TraceError) {
        guard bytes.count >= AccessTrace.headerSize else { throw .truncatedHeader(length: bytes.count) }
        guard Array(bytes[0..<4]) == AccessTrace.magic else { throw .badMagic(Array(bytes[0..<4])) }
        version = UInt16(bytes[4]) | UInt16(bytes[5]) << 8
        guard AccessTrace.readableVersions.contains(version) else { throw .unsupportedVersion(version) }
        self.bytes = bytes
        position = AccessTrace.headerSize
    }

    /// The next device event, frames skipped, or nil at the end.
    public mutating func next() throws(TraceError) -> DeviceEvent? {
        while let record = try nextRecord() {
            if case .event(let event) = record { return event }
        }
        return nil
    }

    /// The next record, or nil at the end.
    public mutating func nextRecord() throws(TraceError) -> TraceRecord? {
        guard position < bytes.count else { return nil }
        let at = position
        let tag = bytes[at]
        if tag >> AccessTrace.widthShift & 0x3 == AccessTrace.controlWidthCode { return try control(tag, at: at) }
        let width: AccessWidth = switch tag >> AccessTrace.widthShift & 0x3 { case 0: .byte; case 1: .word; default: .dword }
        guard bytes.count - at - 1 >= width.rawValue else { throw .truncatedRecord(offset: at) }
        var value: UInt32 = 0
        for i in 0..<width.rawValue { value |= UInt32(bytes[at + 1 + i]) << (8 * UInt32(i)) }
        position = at + 1 + width.rawValue
        let direction: AccessDirection = tag & AccessTrace.writeBit != 0 ? .write : .read
        return .event(.access(PortAccess(direction, offset: tag & 0x1F, width: width, value: value)))
    }

    private mutating func control(_ tag: UInt8, at: Int) throws(TraceError) -> TraceRecord {
        switch tag {
        case AccessTrace.interruptLow: position += 1; return .event(.interrupt(asserted: false))
        case AccessTrace.interruptHigh: position += 1; return .event(.interrupt(asserted: true))
        case AccessTrace.functionReset: position += 1; return .event(.reset)
        case AccessTrace.frameArrived where version >= 2:
            guard bytes.count - at >= 3 else { throw .truncatedRecord(offset: at) }
            let length = Int(bytes[at + 1]) | Int(bytes[at + 2]) << 8
            guard bytes.count - at - 3 >= length else { throw .truncatedRecord(offset: at) }
            position = at + 3 + length
            return .frameArrived(Array(bytes[at + 3..<at + 3 + length]))
        default: throw .invalidTag(tag, offset: at)
        }
    }

    /// Decodes the whole trace's device events (frames skipped).
    public static func decode(_ bytes: [UInt8]) throws(TraceError) -> [DeviceEvent] {
        var decoder = try TraceDecoder(bytes: bytes)
        var events: [DeviceEvent] = []
        while let event = try decoder.next() { events.append(event) }
        return events
    }

    /// Decodes every record of the trace, frames included.
    public static func decodeRecords(_ bytes: [UInt8]) throws(TraceError) -> [TraceRecord] {
        var decoder = try TraceDecoder(bytes: bytes)
        var records: [TraceRecord] = []
        while let record = try decoder.nextRecord() { records.append(record) }
        return records
    }
}
