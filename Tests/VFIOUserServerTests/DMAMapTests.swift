import CVPIOShim
import Glibc
import Testing
import VFIOUserServer
import VFIOUserWire
import VPIOSystem

@Suite struct DMAMapTests {
    /// A memfd standing in for guest RAM, with a marker written at `offset`.
    func guestMemory(size: Int, marker: [UInt8], at offset: Int) throws -> FileDescriptor {
        let raw = vpio_memfd_create("guest-ram")
        #expect(raw >= 0)
        let fd = FileDescriptor(rawValue: raw)
        #expect(ftruncate(raw, off_t(size)) == 0)
        _ = try fd.writeAll(toAbsoluteOffset: Int64(offset), marker)
        return fd
    }

    @Test func mapReadUnmap() throws {
        var h = try Harness()
        let fd = try guestMemory(size: 1 << 20, marker: [0xDE, 0xAD, 0xBE, 0xEF], at: 0x2_0010)
        defer { try? fd.close() }
        let map = DMAMapRequest(flags: [.readable, .writable], fileOffset: 0x2_0000, address: 0xC_0000, size: 0x4_0000)
        let (reply, _) = try h.send(.dmaMap, map.encode(), descriptors: [OwnedDescriptor(try fd.duplicate())])
        #expect(!reply.flags.contains(.error))
        #expect(h.session.dma.read(guestAddress: 0xC_0010, count: 4) == [0xDE, 0xAD, 0xBE, 0xEF])
        #expect(h.session.dma.read(guestAddress: 0xF_FFFE, count: 4) == nil)  // runs off the end
        #expect(h.session.dma.read(guestAddress: UInt64.max - 1, count: 4) == nil)
        // Overlap refused.
        let overlap = DMAMapRequest(flags: [.readable], fileOffset: 0, address: 0xD_0000, size: 0x1000)
        #expect(try h.send(.dmaMap, overlap.encode()).0.error == Errno.EEXIST)
        let (unmap, echoed) = try h.send(.dmaUnmap, DMAUnmapRequest(address: 0xC_0000, size: 0x4_0000).encode())
        #expect(!unmap.flags.contains(.error) && echoed.count == 24)
        #expect(h.session.dma.entries.isEmpty)
        #expect(try h.send(.dmaUnmap, DMAUnmapRequest(address: 0xC_0000, size: 0x4_0000).encode()).0.error == Errno.ENOENT)
    }

    /// A bus master's write lands in the client's memory, and only inside a range mapped writable.
    @Test func writesReachTheClientsMemoryOnlyWhereMappedWritable() throws {
        var h = try Harness()
        let fd = try guestMemory(size: 1 << 20, marker: [], at: 0)
        defer { try? fd.close() }
        let writable = DMAMapRequest(flags: [.readable, .writable], fileOffset: 0, address: 0x10_0000, size: 0x1_0000)
        let readOnly = DMAMapRequest(flags: [.readable], fileOffset: 0x1_0000, address: 0x20_0000, size: 0x1_0000)
        for map in [writable, readOnly] {
            #expect(!(try h.send(.dmaMap, map.encode(), descriptors: [OwnedDescriptor(try fd.duplicate())])).0.flags.contains(.error))
        }
        #expect(h.session.dma.write(guestAddress: 0x10_0100, bytes: [1, 2, 3]))
        var back = [UInt8](repeating: 0, count: 3)
        #expect(pread(fd.rawValue, &back, 3, 0x100) == 3 && back == [1, 2, 3], "the bytes are in the client's file")
        #expect(!h.session.dma.write(guestAddress: 0x10_FFFE, bytes: [9, 9, 9, 9]), "runs off the end")
        #expect(!h.session.dma.write(guestAddress: 0x20_0000, bytes: [9]), "mapped read-only")
        #expect(!h.session.dma.write(guestAddress: 0x30_0000, bytes: [9]), "not mapped")
        #expect(h.session.dma.read(guestAddress: 0x10_FFFE, count: 2) == [0, 0], "nothing of the refused write landed")
    }

    @Test func unalignedFileOffsetStillMapsTheRightBytes() throws {
        var h = try Harness()
        let fd = try guestMemory(size: 1 << 16, marker: [7, 8], at: 0x1234)
        defer { try? fd.close() }
        let map = DMAMapRequest(flags: [.readable], fileOffset: 0x1230, address: 0x10_0000, size: 0x100)
        #expect(try !h.send(.dmaMap, map.encode(), descriptors: [OwnedDescriptor(try fd.duplicate())]).0.flags.contains(.error))
        #expect(h.session.dma.read(guestAddress: 0x10_0004, count: 2) == [7, 8])
    }

    @Test func mapWithoutDescriptorIsRecordedButNotReadable() throws {
        var h = try Harness()
        #expect(try !h.send(.dmaMap, DMAMapRequest(flags: [.readable], fileOffset: 0, address: 0, size: 0x1000).encode()).0.flags.contains(.error))
        #expect(h.session.dma.contains(guestAddress: 0, count: 16))
        #expect(h.session.dma.read(guestAddress: 0, count: 16) == nil)
    }

    @Test func tooManyMapsRefused() throws {
        let table = DMAMapTable(maxEntries: 2)
        try table.map(DMAMapRequest(flags: [.readable], fileOffset: 0, address: 0, size: 0x1000), descriptor: nil)
        try table.map(DMAMapRequest(flags: [.readable], fileOffset: 0, address: 0x1000, size: 0x1000), descriptor: nil)
        #expect(throws: DMAMapTable.MapError.tooMany) {
            try table.map(DMAMapRequest(flags: [.readable], fileOffset: 0, address: 0x2000, size: 0x1000), descriptor: nil)
        }
    }

    @Test func sessionCloseUnmapsEverything() throws {
        var h = try Harness()
        try h.send(.dmaMap, DMAMapRequest(flags: [.readable], fileOffset: 0, address: 0, size: 0x1000).encode())
        h.session.close()
        #expect(h.session.dma.entries.isEmpty)
    }

    /// A client that maps more than its file holds, or shrinks the file afterwards, cannot make a host
    /// read of guest memory fault (issue 11: SIGBUS killed vpio-host).
    @Test func aRangeBeyondItsFileIsRefusedAndAShrunkFileReadsAsUnmapped() throws {
        var h = try Harness()
        let fd = try guestMemory(size: 0x2000, marker: [1, 2, 3, 4], at: 0x1000)
        defer { try? fd.close() }
        let tooLong = DMAMapRequest(flags: [.readable], fileOffset: 0x1000, address: 0x10_0000, size: 0x2000)
        #expect(try h.send(.dmaMap, tooLong.encode(), descriptors: [OwnedDescriptor(try fd.duplicate())]).0.error == Errno.EFAULT)
        #expect(h.session.dma.entries.isEmpty)
        let fits = DMAMapRequest(flags: [.readable], fileOffset: 0x1000, address: 0x10_0000, size: 0x1000)
        #expect(try h.send(.dmaMap, fits.encode(), descriptors: [OwnedDescriptor(try fd.duplicate())]).0.error == 0)
        #expect(h.session.dma.read(guestAddress: 0x10_0000, count: 4) == [1, 2, 3, 4])
        #expect(ftruncate(fd.rawValue, 0x800) == 0)
        #expect(h.session.dma.read(guestAddress: 0x10_0000, count: 4) == nil, "past the shrunk file's end: no bytes, no SIGBUS")
    }
}
