/// The fixed part of VFIO_USER_REGION_READ / REGION_WRITE, in requests and replies.
public struct RegionAccess: Equatable, Sendable {
    public static let size = 16

    public var offset: UInt64
    public var region: UInt32
    public var count: UInt32

    public init(offset: UInt64, region: UInt32, count: UInt32) {
        self.offset = offset
        self.region = region
        self.count = count
    }

    /// The access that heads a REGION_READ, REGION_WRITE (or any payload that starts with one), the rest
    /// left undecoded: enough to tell which region a message touches before serving it.
    public init(decodingPrefixOf payload: ArraySlice<UInt8>) throws {
        var r = ByteReader(payload)
        try self.init(reading: &r)
    }

    init(reading r: inout ByteReader) throws {
        offset = try r.u64()
        region = try r.u32()
        count = try r.u32()
    }

    func encode(into w: inout ByteWriter) {
        w.u64(offset)
        w.u32(region)
        w.u32(count)
    }

    /// The byte range it touches, checked for overflow.
    public var end: UInt64? {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        return overflow ? nil : end
    }
}

/// REGION_READ request: the access alone. `maxCount` bounds what a reply may carry.
public struct RegionReadRequest: Equatable, Sendable {
    public var access: RegionAccess

    public init(access: RegionAccess) { self.access = access }

    public init(decoding payload: ArraySlice<UInt8>, maxCount: UInt32) throws {
        var r = ByteReader(payload)
        access = try RegionAccess(reading: &r)
        guard access.count > 0, access.count <= maxCount, access.end != nil else {
            throw WireError.invalidField("REGION_READ count \(access.count)")
        }
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: RegionAccess.size)
        access.encode(into: &w)
        return w.bytes
    }

    /// The reply payload: the access echoed, then the data read; with room for `reservingCapacity`
    /// more bytes, when the data is appended after.
    public static func reply(access: RegionAccess, data: [UInt8], reservingCapacity extra: Int = 0) -> [UInt8] {
        var w = ByteWriter(capacity: RegionAccess.size + data.count + extra)
        access.encode(into: &w)
        w.append(data)
        return w.bytes
    }
}

/// REGION_WRITE request: the access and exactly `count` bytes of data.
public struct RegionWriteRequest: Equatable, Sendable {
    public var access: RegionAccess
    public var data: [UInt8]

    public init(offset: UInt64, region: UInt32, data: [UInt8]) {
        access = RegionAccess(offset: offset, region: region, count: UInt32(data.count))
        self.data = data
    }

    public init(decoding payload: ArraySlice<UInt8>, maxCount: UInt32) throws {
        var r = ByteReader(payload)
        access = try RegionAccess(reading: &r)
        guard access.count > 0, access.count <= maxCount, access.end != nil else {
            throw WireError.invalidField("REGION_WRITE count \(access.count)")
        }
        data = Array(try r.take(Int(access.count)))
        guard r.remaining == 0 else { throw WireError.invalidField("REGION_WRITE trailing bytes") }
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: RegionAccess.size + data.count)
        access.encode(into: &w)
        w.append(data)
        return w.bytes
    }

    /// The reply payload: the access echoed, no data.
    public static func reply(access: RegionAccess) -> [UInt8] {
        var w = ByteWriter(capacity: RegionAccess.size)
        access.encode(into: &w)
        return w.bytes
    }
}

/// VFIO_USER_REGION_WRITE_MULTI: a batch of small posted writes (each at most 8 bytes).
public struct RegionWriteMultiRequest: Equatable, Sendable {
    public static let entrySize = 24
    public static let maxEntryData = 8
    /// QEMU batches at most 200; anything far above is a malformed message.
    public static let maxEntries = 1024

    public var writes: [RegionWriteRequest]

    public init(writes: [RegionWriteRequest]) { self.writes = writes }

    public init(decoding payload: ArraySlice<UInt8>) throws {
        var r = ByteReader(payload)
        let n = try r.u64()
        guard n > 0, n <= UInt64(Self.maxEntries) else { throw WireError.invalidField("WRITE_MULTI count \(n)") }
        guard r.remaining == Int(n) * Self.entrySize else {
            throw WireError.invalidField("WRITE_MULTI size \(r.remaining) for \(n) entries")
        }
        writes = []
        writes.reserveCapacity(Int(n))
        for _ in 0..<n {
            let access = try RegionAccess(reading: &r)
            let slot = try r.take(Self.maxEntryData)
            guard access.count > 0, access.count <= UInt32(Self.maxEntryData), access.end != nil else {
                throw WireError.invalidField("WRITE_MULTI entry count \(access.count)")
            }
            writes.append(RegionWriteRequest(offset: access.offset, region: access.region,
                                             data: Array(slot.prefix(Int(access.count)))))
        }
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 8 + writes.count * Self.entrySize)
        w.u64(UInt64(writes.count))
        for write in writes {
            write.access.encode(into: &w)
            var slot = write.data
            slot += [UInt8](repeating: 0, count: max(0, Self.maxEntryData - slot.count))
            w.append(slot.prefix(Self.maxEntryData))
        }
        return w.bytes
    }
}
