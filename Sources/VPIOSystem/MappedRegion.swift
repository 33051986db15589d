import Glibc
import SystemPackage

/// A shared mapping of a descriptor range, such as guest RAM a peer sent with DMA_MAP.
///
/// Unmaps itself on deinit. The API never hands out a pointer: every access is copied in or out
/// after a bounds check, so a guest-supplied offset cannot reach outside the mapping.
///
/// `@safe`: the raw base address never leaves the class. `@unchecked Sendable`: the base address, length and protection never change after init, and
/// the bytes behind them are shared with another process anyway, so no lock could make
/// concurrent access to them more ordered than the peer's side already is.
@safe public final class MappedRegion: @unchecked Sendable {
    /// An access that does not fit inside the region.
    public struct OutOfBounds: Error, Equatable, CustomStringConvertible {
        /// The requested start, count, and the region's length.
        public let offset: Int
        public let count: Int
        public let length: Int

        public init(offset: Int, count: Int, length: Int) {
            self.offset = offset
            self.count = count
            self.length = length
        }

        public var description: String {
            "access of \(count) bytes at offset \(offset) is outside a \(length)-byte region"
        }
    }

    /// A write to a region mapped read-only.
    public struct NotWritable: Error, Equatable {
        public init() {}
    }

    /// A file offset that is not a multiple of the page size (mmap would reject it).
    public struct MisalignedOffset: Error, Equatable, CustomStringConvertible {
        /// The requested file offset and the page size it must be a multiple of.
        public let offset: UInt64
        public let pageSize: Int

        public init(offset: UInt64, pageSize: Int) {
            self.offset = offset
            self.pageSize = pageSize
        }

        public var description: String { "offset \(offset) is not a multiple of the page size \(pageSize)" }
    }

    /// The mapping's size in bytes.
    public let length: Int
    /// Whether `write(_:at:)` is allowed.
    public let isWritable: Bool
    private let base: UnsafeMutableRawPointer

    /// Maps `length` bytes of `descriptor` from `offset` with MAP_SHARED, so writes reach the
    /// file and the other processes that map it.
    ///
    /// Throws `MisalignedOffset` unless `offset` is page-aligned and representable as off_t, and
    /// `SystemCallError` if mmap fails (e.g. EINVAL for a zero length, EACCES for a writable
    /// mapping of a read-only descriptor). The descriptor may be closed afterwards.
    public init(descriptor: FileDescriptor, offset: UInt64, length: Int, writable: Bool) throws {
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard offset % UInt64(pageSize) == 0, let fileOffset = Int64(exactly: offset) else {
            throw MisalignedOffset(offset: offset, pageSize: pageSize)
        }
        let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
        // SAFETY: storing the address is safe; it is only dereferenced after bounds checks.
        unsafe base = try Syscall.mmap(
            length: length, protection: protection, flags: MAP_SHARED, descriptor, offset: fileOffset)
        self.length = length
        self.isWritable = writable
    }

    deinit {
        // SAFETY: `base`/`length` are exactly the mapping made in init, and nothing can use it
        // once the object is gone. munmap of a valid mapping does not fail.
        _ = try? unsafe Syscall.munmap(base, length: length)
    }

    /// Copies `count` bytes starting at `offset` out of the region.
    public func read(at offset: Int, count: Int) throws -> [UInt8] {
        try checkBounds(offset: offset, count: count)
        // SAFETY: [offset, offset + count) lies inside the mapping (checked above), and the
        // initializer writes exactly `count` bytes into the fresh array.
        return unsafe [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            unsafe UnsafeMutableRawBufferPointer(buffer).copyMemory(
                from: UnsafeRawBufferPointer(start: base + offset, count: count))
            initialized = count
        }
    }

    /// Copies `bytes` into the region starting at `offset`.
    ///
    /// Throws `NotWritable` for a read-only mapping and `OutOfBounds` if the bytes do not fit.
    public func write(_ bytes: [UInt8], at offset: Int) throws {
        guard isWritable else { throw NotWritable() }
        try checkBounds(offset: offset, count: bytes.count)
        // SAFETY: [offset, offset + bytes.count) lies inside a writable mapping (checked above).
        unsafe bytes.withUnsafeBytes { source in
            unsafe UnsafeMutableRawBufferPointer(start: base + offset, count: source.count).copyMemory(from: source)
        }
    }

    private func checkBounds(offset: Int, count: Int) throws(OutOfBounds) {
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard offset >= 0, count >= 0, !overflow, end <= length else {
            throw OutOfBounds(offset: offset, count: count, length: length)
        }
    }
}
