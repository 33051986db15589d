import Glibc

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
    case open(errno: Int32)
    case read(address: UInt, errno: Int32)
    case notResolved(address: UInt, entry: UInt64)

    public var description: String {
        switch self {
        case let .open(e): "cannot open /proc/self/pagemap: \(String(cString: strerror(e)))"
        case let .read(address, e): "cannot read the pagemap entry of 0x\(String(address, radix: 16)): \(String(cString: strerror(e)))"
        case let .notResolved(address, entry):
            "page 0x\(String(address, radix: 16)) has no physical address (pagemap entry 0x\(String(entry, radix: 16)); not present, or not root)"
        }
    }
}

public enum VPIOPagemap {
    public static let pageSize = 4096

    /// The guest-physical address of each page of [address, address + length), through /proc/self/pagemap.
    public static func physicalAddresses(of address: UnsafeRawPointer, length: Int) throws -> [UInt64] {
        let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PagemapError.open(errno: errno) }
        defer { close(fd) }
        let first = UInt(bitPattern: address) / UInt(pageSize)
        let count = (length + pageSize - 1) / pageSize
        var result: [UInt64] = []
        for page in 0..<count {
            let virtual = (first + UInt(page)) * UInt(pageSize)
            var raw: UInt64 = 0
            let n = pread(fd, &raw, 8, off_t((first + UInt(page)) * 8))
            guard n == 8 else { throw PagemapError.read(address: virtual, errno: n < 0 ? errno : EIO) }
            guard let physical = PagemapEntry(raw: raw).physicalAddress else {
                throw PagemapError.notResolved(address: virtual, entry: raw)
            }
            result.append(physical)
        }
        return result
    }
}
