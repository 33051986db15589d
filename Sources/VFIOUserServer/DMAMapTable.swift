import DeviceBus
import VFIOUserWire
import VPIOSystem

/// The guest memory the client has mapped for DMA, each range reached through the fd it sent with
/// pread/pwrite (`FileRange`): a range longer than its file is refused, and a file shrunk later makes
/// reads fail instead of killing the host with SIGBUS. Every lookup is bounds-checked: guest addresses
/// come from the guest. The agent's ring is read, and a bus master's DMA reaches, guest RAM through it.
public final class DMAMapTable: WritableGuestMemory {
    public struct Entry {
        public let address: UInt64
        public let size: UInt64
        public let flags: DMAMapRequest.Flags
        /// Nil when the client mapped without an fd (DMA by message, which this server does not do).
        let memory: FileRange?

        var end: UInt64 { address + size }
    }

    public enum MapError: Error, Equatable {
        case overlaps, tooMany, notMapped, unaligned, mapFailed(String)

        public var errno: UInt32 {
            switch self {
            case .overlaps: Errno.EEXIST
            case .tooMany: Errno.ENOSPC
            case .notMapped: Errno.ENOENT
            case .unaligned: Errno.EINVAL
            case .mapFailed: Errno.EFAULT
            }
        }
    }

    public let maxEntries: Int
    public private(set) var entries: [Entry] = []
    static let pageSize: UInt64 = 4096

    public init(maxEntries: Int) { self.maxEntries = maxEntries }

    /// Adds a range; `descriptor` (if any) is mapped and may be closed by the caller afterwards.
    public func map(_ request: DMAMapRequest, descriptor: FileDescriptor?) throws {
        guard entries.count < maxEntries else { throw MapError.tooMany }
        let end = request.address + request.size  // overflow rejected by the decoder
        guard !entries.contains(where: { $0.address < end && request.address < $0.end }) else { throw MapError.overlaps }
        var memory: FileRange?
        if let descriptor {
            guard request.size <= UInt64(Int.max) else { throw MapError.unaligned }
            do {
                memory = try FileRange(descriptor: descriptor, offset: request.fileOffset, length: Int(request.size),
                                       writable: request.flags.contains(.writable))
            } catch {
                throw MapError.mapFailed("\(error)")
            }
        }
        entries.append(Entry(address: request.address, size: request.size, flags: request.flags, memory: memory))
        entries.sort { $0.address < $1.address }
    }

    /// Removes every range inside `address..<address+size`; throws when there is none.
    public func unmap(address: UInt64, size: UInt64) throws {
        let (end, overflow) = address.addingReportingOverflow(size)
        guard !overflow else { throw MapError.notMapped }
        let before = entries.count
        entries.removeAll { $0.address >= address && $0.end <= end }
        guard entries.count < before else { throw MapError.notMapped }
    }

    public func unmapAll() { entries.removeAll() }

    /// Reads guest memory; nil when any byte of the range is not mapped readable through an fd.
    public func read(guestAddress: UInt64, count: Int) -> [UInt8]? {
        guard let (entry, offset) = locate(guestAddress, count), entry.flags.contains(.readable),
              let memory = entry.memory else { return nil }
        return try? memory.read(at: offset, count: count)
    }

    /// Writes guest memory (a bus master's receive ring); false, and nothing written, when any byte of
    /// the range is not mapped writable through an fd.
    public func write(guestAddress: UInt64, bytes: [UInt8]) -> Bool {
        guard let (entry, offset) = locate(guestAddress, bytes.count), entry.flags.contains(.writable),
              let memory = entry.memory else { return false }
        return (try? memory.write(bytes, at: offset)) != nil
    }

    /// Whether `count` bytes at `guestAddress` lie inside one mapped range.
    public func contains(guestAddress: UInt64, count: Int) -> Bool { locate(guestAddress, count) != nil }

    private func locate(_ address: UInt64, _ count: Int) -> (Entry, Int)? {
        guard count >= 0 else { return nil }
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        guard !overflow, let entry = entries.first(where: { $0.address <= address && end <= $0.end }) else { return nil }
        return (entry, Int(address - entry.address))
    }
}
