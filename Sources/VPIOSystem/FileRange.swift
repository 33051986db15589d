import Glibc
import SystemPackage

/// A byte range of a file a peer handed over (guest RAM sent with DMA_MAP), reached with pread and
/// pwrite on a descriptor of our own, never through a mapping: if the peer shrinks the file later, an
/// access past its new end comes up short and throws, where a mapping would kill the process with
/// SIGBUS. The range is checked against the file's size when it is made.
public final class FileRange {
    /// The range is longer than the file behind it (or the file cannot be sized).
    public struct BeyondEndOfFile: Error, Equatable, CustomStringConvertible {
        public let offset: UInt64
        public let length: Int
        public let fileSize: Int64
        public var description: String { "range of \(length) bytes at \(offset) ends beyond the file's \(fileSize) bytes" }
    }

    /// An access outside the range, or one the file no longer holds.
    public struct ShortAccess: Error, Equatable, CustomStringConvertible {
        public let offset: Int
        public let count: Int
        public var description: String { "access of \(count) bytes at \(offset) is outside the range or past the file's end" }
    }

    public let length: Int
    public let isWritable: Bool
    private let file: OwnedDescriptor
    private let start: Int64

    /// Duplicates `descriptor` (the caller keeps and closes its own) and checks the range fits the file.
    public init(descriptor: FileDescriptor, offset: UInt64, length: Int, writable: Bool) throws {
        let size = Int64(try Syscall.fstat(descriptor).st_size)
        let (end, overflow) = offset.addingReportingOverflow(UInt64(max(length, 0)))
        guard length > 0, !overflow, end <= UInt64(Int64.max), Int64(end) <= size else {
            throw BeyondEndOfFile(offset: offset, length: length, fileSize: size)
        }
        file = OwnedDescriptor(try Syscall.duplicate(descriptor))
        start = Int64(offset)
        self.length = length
        isWritable = writable
    }

    /// `count` bytes at `offset` within the range.
    public func read(at offset: Int, count: Int) throws -> [UInt8] {
        try checkBounds(offset, count)
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            // SAFETY: the slice starting at `done` is inside the array's `count` bytes, borrowed for this call.
            let n = try unsafe bytes.withUnsafeMutableBytes {
                try unsafe Syscall.pread(file.descriptor, into: UnsafeMutableRawBufferPointer(rebasing: $0[done...]), at: start + Int64(offset + done))
            }
            guard n > 0 else { throw ShortAccess(offset: offset, count: count) }
            done += n
        }
        return bytes
    }

    /// Writes `bytes` at `offset` within the range.
    public func write(_ bytes: [UInt8], at offset: Int) throws {
        guard isWritable else { throw MappedRegion.NotWritable() }
        try checkBounds(offset, bytes.count)
        var done = 0
        while done < bytes.count {
            // SAFETY: the slice starting at `done` is inside the array's bytes, borrowed for this call.
            let n = try unsafe bytes.withUnsafeBytes {
                try unsafe Syscall.pwrite(file.descriptor, from: UnsafeRawBufferPointer(rebasing: $0[done...]), at: start + Int64(offset + done))
            }
            guard n > 0 else { throw ShortAccess(offset: offset, count: bytes.count) }
            done += n
        }
    }

    private func checkBounds(_ offset: Int, _ count: Int) throws {
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard offset >= 0, count >= 0, !overflow, end <= length else { throw ShortAccess(offset: offset, count: count) }
    }
}
