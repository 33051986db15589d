/// Little-endian field reader over a message payload. Every read is bounds-checked and throws
/// `WireError.truncated` instead of trapping: payloads come from the client.
public struct ByteReader {
    public let bytes: ArraySlice<UInt8>
    public private(set) var position: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    public init(_ bytes: [UInt8]) { self.init(bytes[...]) }

    public var remaining: Int { bytes.endIndex - position }

    mutating func require(_ count: Int) throws {
        guard count <= remaining else {
            throw WireError.truncated(needed: position - bytes.startIndex + count, available: bytes.count)
        }
    }

    public mutating func u8() throws -> UInt8 {
        try require(1)
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func u16() throws -> UInt16 { UInt16(truncatingIfNeeded: try little(2)) }
    public mutating func u32() throws -> UInt32 { UInt32(truncatingIfNeeded: try little(4)) }
    public mutating func u64() throws -> UInt64 { try little(8) }

    /// The next `count` bytes.
    public mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        try require(count)
        defer { position += count }
        return bytes[position..<position + count]
    }

    /// Everything not read yet.
    public mutating func rest() -> ArraySlice<UInt8> {
        defer { position = bytes.endIndex }
        return bytes[position...]
    }

    private mutating func little(_ count: Int) throws -> UInt64 {
        try require(count)
        var value: UInt64 = 0
        for i in 0..<count { value |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += count
        return value
    }
}

/// Little-endian field writer.
public struct ByteWriter {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Runs `body` with a writer that appends to `bytes` in place (the storage moves into the writer
    /// and back, so it is neither copied nor reallocated while it has room).
    public static func appending(to bytes: inout [UInt8], _ body: (inout ByteWriter) -> Void) {
        var writer = ByteWriter(capacity: 0)
        swap(&writer.bytes, &bytes)
        body(&writer)
        swap(&writer.bytes, &bytes)
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { little(UInt64(v), 2) }
    public mutating func u32(_ v: UInt32) { little(UInt64(v), 4) }
    public mutating func u64(_ v: UInt64) { little(v, 8) }
    public mutating func append<S: Sequence>(_ s: S) where S.Element == UInt8 { bytes.append(contentsOf: s) }

    private mutating func little(_ v: UInt64, _ count: Int) {
        for i in 0..<count { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
}
