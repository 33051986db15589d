/// One 64-bit entry of /proc/<pid>/pagemap (Documentation/admin-guide/mm/pagemap.rst).
public struct PagemapEntry: Sendable, Equatable {
    public var raw: UInt64
    public init(raw: UInt64) { self.raw = raw }

    /// Bit 63: the page is present in RAM.
    public var present: Bool { raw >> 63 & 1 == 1 }
    /// Bit 62: swapped (then bits 0–54 are not a PFN).
    public var swapped: Bool { raw >> 62 & 1 == 1 }
    /// Bits 0–54: the page frame number (reads as 0 without CAP_SYS_ADMIN).
    public var pfn: UInt64 { raw & ((1 << 55) - 1) }

    /// The physical address of the page, when present and the PFN is visible.
    public var physicalAddress: UInt64? {
        guard present, !swapped, pfn != 0 else { return nil }
        return pfn * UInt64(VPIOPagemap.pageSize)
    }
}

public enum PagemapError: Error, CustomStringConvertible {
    case open(AgentSyscallError)
    case read(address: UInt, AgentSyscallError?)
    case notResolved(address: UInt, entry: UInt64)

    public var description: String {
        switch self {
        case let .open(error): "cannot open /proc/self/pagemap: \(error)"
        case let .read(address, error):
            "cannot read the pagemap entry of 0x\(String(address, radix: 16)): \(error.map { "\($0)" } ?? "short read")"
        case let .notResolved(address, entry):
            "page 0x\(String(address, radix: 16)) has no physical address (pagemap entry 0x\(String(entry, radix: 16)); not present, or not root)"
        }
    }
}

public enum VPIOPagemap {
    public static let pageSize = 4096

    /// The guest-physical address of each page of [address, address + length) of this process's
    /// virtual memory, through /proc/self/pagemap.
    public static func physicalAddresses(ofVirtual address: UInt, length: Int) throws -> [UInt64] {
        let pagemap: AgentFile
        do {
            pagemap = try AgentFile("/proc/self/pagemap")
        } catch {
            throw PagemapError.open(error)
        }
        let first = address / UInt(pageSize)
        let count = (length + pageSize - 1) / pageSize
        return try (0..<UInt(count)).map { page in
            let virtual = (first + page) * UInt(pageSize)
            let raw = try entry(of: first + page, in: pagemap, virtual: virtual)
            guard let physical = PagemapEntry(raw: raw).physicalAddress else {
                throw PagemapError.notResolved(address: virtual, entry: raw)
            }
            return physical
        }
    }

    /// The raw 64-bit little-endian entry of virtual page number `page`.
    private static func entry(of page: UInt, in pagemap: AgentFile, virtual: UInt) throws -> UInt64 {
        let bytes: [UInt8]
        do {
            bytes = try pagemap.read(count: 8, at: Int(page * 8))
        } catch {
            throw PagemapError.read(address: virtual, error)
        }
        guard bytes.count == 8 else { throw PagemapError.read(address: virtual, nil) }
        return bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
}
