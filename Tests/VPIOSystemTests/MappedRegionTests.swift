import Testing
import VPIOSystem

@Suite struct MappedRegionTests {
    let file: OwnedDescriptor
    let region: MappedRegion

    init() throws {
        file = try OwnedDescriptor.memoryFile(name: "vpio-test-region", length: 4096)
        region = try MappedRegion(descriptor: file.descriptor, offset: 0, length: 4096, writable: true)
    }

    @Test func readWriteRoundTripAtTheEdges() throws {
        #expect(region.length == 4096)
        try region.write([1, 2, 3], at: 0)
        try region.write([7, 8], at: 4094)
        #expect(try region.read(at: 0, count: 3) == [1, 2, 3])
        #expect(try region.read(at: 4094, count: 2) == [7, 8])
        #expect(try region.read(at: 100, count: 4) == [0, 0, 0, 0])
        // Empty accesses are in bounds anywhere up to the end.
        #expect(try region.read(at: 4096, count: 0) == [])
        try region.write([], at: 4096)
    }

    @Test(arguments: [
        (-1, 1),  // negative offset
        (0, -1),  // negative count
        (4096, 1),  // starts at the end
        (4095, 2),  // runs past the end
        (0, 4097),  // longer than the region
        (Int.max, 1),  // offset + count overflows
        (1, Int.max),  // offset + count overflows
        (Int.min, Int.max),  // sums into range but starts negative
    ])
    func outOfBoundsReadsThrow(offset: Int, count: Int) {
        #expect(throws: MappedRegion.OutOfBounds(offset: offset, count: count, length: 4096)) {
            try region.read(at: offset, count: count)
        }
    }

    @Test(arguments: [-1, 4095, 4097, Int.max, Int.min])
    func outOfBoundsWritesThrow(offset: Int) {
        #expect(throws: MappedRegion.OutOfBounds(offset: offset, count: 2, length: 4096)) {
            try region.write([1, 2], at: offset)
        }
    }

    @Test func readOnlyMappingRefusesWrites() throws {
        let readOnly = try MappedRegion(descriptor: file.descriptor, offset: 0, length: 4096, writable: false)
        #expect(!readOnly.isWritable)
        #expect(throws: MappedRegion.NotWritable()) {
            try readOnly.write([1], at: 0)
        }
        try region.write([5], at: 9)
        #expect(try readOnly.read(at: 9, count: 1) == [5])
    }

    @Test func misalignedOffsetIsRefused() throws {
        #expect(throws: MappedRegion.MisalignedOffset.self) {
            try MappedRegion(descriptor: file.descriptor, offset: 100, length: 100, writable: false)
        }
        #expect(throws: MappedRegion.MisalignedOffset.self) {
            try MappedRegion(descriptor: file.descriptor, offset: UInt64.max - 4095, length: 4096, writable: false)
        }
    }

    @Test func mmapFailureIsASystemCallError() throws {
        #expect(throws: SystemCallError(call: "mmap", errno: .invalidArgument)) {
            try MappedRegion(descriptor: file.descriptor, offset: 0, length: 0, writable: false)
        }
    }
}
