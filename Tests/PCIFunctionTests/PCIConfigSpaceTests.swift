import Testing
@testable import PCIFunction

@Suite struct PCIConfigSpaceTests {
    var space = PCIConfigSpace(identity: .rtl8029, bar0Size: 32)

    func u32(_ bytes: [UInt8]?) -> UInt32 {
        let b = bytes!
        return b.enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }

    @Test func identityBytes() {
        let head = space.read(offset: 0, count: 16, interruptPending: false)!
        #expect(head[0...3] == [0xEC, 0x10, 0x29, 0x80])
        #expect(head[0x0B] == 0x02 && head[0x0A] == 0x00)  // Ethernet controller
        #expect(space.read(offset: 0x3D, count: 1, interruptPending: false) == [0x01])  // INTA#
        #expect(u32(space.read(offset: 0x30, count: 4, interruptPending: false)) == 0)  // no ROM
    }

    /// The RTL8139: what 8139too matches (10ec:8139, revision below 0x20), its registers as a 256-byte
    /// I/O BAR0 and a 256-byte memory BAR1 (8139too insists on BAR1 being memory unless use_io=1).
    @Test func rtl8139Identity() {
        var rtl = PCIConfigSpace(identity: .rtl8139, bars: [0: .init(size: 256, space: .io), 1: .init(size: 256, space: .memory)])
        let head = rtl.read(offset: 0, count: 16, interruptPending: false)!
        #expect(head[0...3] == [0xEC, 0x10, 0x39, 0x81] && head[0x08] == 0x10 && head[0x0B] == 0x02)
        #expect(u32(rtl.read(offset: 0x14, count: 4, interruptPending: false)) == 0, "memory, 32-bit, not prefetchable")
        rtl.write(offset: 0x10, data: [0xFF, 0xFF, 0xFF, 0xFF])
        rtl.write(offset: 0x14, data: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(u32(rtl.read(offset: 0x10, count: 4, interruptPending: false)) == 0xFFFF_FF01)
        #expect(u32(rtl.read(offset: 0x14, count: 4, interruptPending: false)) == 0xFFFF_FF00)
        #expect(u32(rtl.read(offset: 0x18, count: 4, interruptPending: false)) == 0, "no BAR2")
        rtl.write(offset: 0x04, data: [0x07, 0x00])
        #expect(rtl.command == 0x07 && rtl.busMasterEnabled)
    }

    /// The NE2000 has no memory BAR: its memory-space enable stays 0.
    @Test mutating func noMemoryBARNoMemorySpaceEnable() {
        space.write(offset: 0x04, data: [0x07, 0x00])
        #expect(space.command == 0x05)
    }

    @Test mutating func bar0SizingAndProgramming() {
        #expect(u32(space.read(offset: 0x10, count: 4, interruptPending: false)) == 0x1)
        space.write(offset: 0x10, data: [0xFF, 0xFF, 0xFF, 0xFF])
        // Size probe: all-ones reads back as ~(32-1) with the I/O bit set.
        #expect(u32(space.read(offset: 0x10, count: 4, interruptPending: false)) == 0xFFFF_FFE1)
        space.write(offset: 0x10, data: [0x1F, 0xC0, 0x00, 0x00])
        #expect(space.bar0Base == 0xC000)
        #expect(u32(space.read(offset: 0x10, count: 4, interruptPending: false)) == 0xC001)
        // A byte write into the middle of the BAR keeps the rest.
        space.write(offset: 0x11, data: [0xD0])
        #expect(space.bar0Base == 0xD000)
    }

    @Test mutating func readOnlyFieldsIgnoreWrites() {
        space.write(offset: 0, data: [0, 0, 0, 0])
        space.write(offset: 0x14, data: [0xFF, 0xFF, 0xFF, 0xFF])
        space.write(offset: 0x30, data: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(u32(space.read(offset: 0, count: 4, interruptPending: false)) == 0x8029_10EC)
        #expect(u32(space.read(offset: 0x14, count: 4, interruptPending: false)) == 0)
        #expect(u32(space.read(offset: 0x30, count: 4, interruptPending: false)) == 0)
    }

    @Test mutating func commandAndInterruptStatus() {
        space.write(offset: 0x04, data: [0xFF, 0xFF])
        #expect(space.command == 0x0405)
        #expect(space.ioSpaceEnabled && space.interruptDisabled)
        #expect(space.read(offset: 0x06, count: 2, interruptPending: false) == [0, 0])
        #expect(space.read(offset: 0x06, count: 2, interruptPending: true) == [0x08, 0])
        #expect(space.read(offset: 0x04, count: 4, interruptPending: true)![2] == 0x08)
        space.write(offset: 0x06, data: [0xFF, 0xFF])
        #expect(space.read(offset: 0x06, count: 2, interruptPending: false) == [0, 0])
    }

    @Test mutating func outOfRangeIsRefused() {
        #expect(space.read(offset: 255, count: 2, interruptPending: false) == nil)
        #expect(space.read(offset: -1, count: 1, interruptPending: false) == nil)
        #expect(space.read(offset: 0, count: 0, interruptPending: false) == nil)
        #expect(space.read(offset: Int.max, count: Int.max, interruptPending: false) == nil)
        let before = space
        #expect(space.write(offset: 254, data: [1, 2, 3]) == false)
        #expect(space == before)
    }
}

@Suite struct CapabilityTests {
    @Test func capabilityIsLinkedAndOnlyItsWritableRangeAcceptsWrites() {
        var space = PCIConfigSpace(identity: .rtl8029, bar0Size: 32)
        let added = space.addCapability(id: 0x09, at: 0x40, length: 16, writable: 8..<16)
        #expect(added)
        #expect(space.read(offset: 0x34, count: 1, interruptPending: false) == [0x40])
        #expect(space.read(offset: 0x06, count: 1, interruptPending: false)![0] & 0x10 != 0)
        #expect(space.read(offset: 0x40, count: 3, interruptPending: false) == [0x09, 0x00, 16])
        space.write(offset: 0x40, data: [UInt8](repeating: 0xAA, count: 16))
        #expect(space.load(offset: 0x40, count: 8) == [0x09, 0x00, 16, 0, 0, 0, 0, 0])
        #expect(space.load(offset: 0x48, count: 8) == [UInt8](repeating: 0xAA, count: 8))
        space.store(offset: 0x44, data: [1, 2, 3, 4])
        #expect(space.load(offset: 0x44, count: 4) == [1, 2, 3, 4])
    }

    @Test func capabilitiesThatDoNotFitAreRefused() {
        var space = PCIConfigSpace(identity: .rtl8029, bar0Size: 32)
        let refused = [space.addCapability(id: 0x09, at: 0x3C, length: 8, writable: 4..<8),
                       space.addCapability(id: 0x09, at: 0xF8, length: 16, writable: 4..<8),
                       space.addCapability(id: 0x09, at: 0x42, length: 8, writable: 4..<8)]
        #expect(refused == [false, false, false])
        #expect(space.read(offset: 0x34, count: 1, interruptPending: false) == [0])
    }
}
