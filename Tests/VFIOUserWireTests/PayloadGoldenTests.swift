import Testing
@testable import VFIOUserWire

@Suite struct VersionTests {
    @Test func decodesClientVersion() throws {
        let json = #"{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576,"write_multiple":true,"migration":{"pgsize":4096}}}"#
        let payload = hex("0000 0100") + Array(json.utf8) + [0]
        let v = try VersionMessage(decoding: payload[...])
        #expect(v.major == 0 && v.minor == 1)
        #expect(v.capabilities == Capabilities(maxMessageFDs: 16, maxDataTransferSize: 1_048_576, writeMultiple: true))
    }

    @Test func encodesServerVersionGolden() {
        let v = VersionMessage(major: 0, minor: 1, capabilities: Capabilities(maxMessageFDs: 8, maxDataTransferSize: 4096))
        let json = #"{"capabilities":{"max_data_xfer_size":4096,"max_msg_fds":8}}"#
        #expect(v.encode() == hex("0000 0100") + Array(json.utf8) + [0])
    }

    @Test func emptyCapabilitiesAreDefaults() throws {
        let v = try VersionMessage(decoding: hex("0000 0100")[...])
        #expect(v.capabilities == Capabilities())
    }

    @Test func malformedJSONRejected() {
        let payload = hex("0000 0100") + Array("{not json".utf8) + [0]
        #expect(throws: WireError.invalidField("capabilities JSON")) { try VersionMessage(decoding: payload[...]) }
        #expect(throws: WireError.self) { try VersionMessage(decoding: hex("0000")[...]) }
    }
}

@Suite struct DMATests {
    // argsz 32, flags read|write, offset 0x1000, address 0xC0000, size 0x40000.
    let golden = hex("""
        20000000 03000000 0010000000000000 00000C0000000000 0000040000000000
        """)

    @Test func mapGolden() throws {
        let m = try DMAMapRequest(decoding: golden[...])
        #expect(m == DMAMapRequest(flags: [.readable, .writable], fileOffset: 0x1000, address: 0xC0000, size: 0x40000))
        #expect(m.encode() == golden)
    }

    @Test func mapRejectsBadRanges() {
        var wrap = golden
        wrap.replaceSubrange(16..<24, with: hex("00F0FFFFFFFFFFFF"))  // address + size overflows
        #expect(throws: WireError.self) { try DMAMapRequest(decoding: wrap[...]) }
        var zero = golden
        zero.replaceSubrange(24..<32, with: [UInt8](repeating: 0, count: 8))
        #expect(throws: WireError.self) { try DMAMapRequest(decoding: zero[...]) }
        #expect(throws: WireError.self) { try DMAMapRequest(decoding: golden[0..<31]) }
        var flags = golden
        flags[4] = 0x80
        #expect(throws: WireError.self) { try DMAMapRequest(decoding: flags[...]) }
    }

    @Test func unmapGolden() throws {
        let bytes = hex("18000000 00000000 00000C0000000000 0000040000000000")
        let u = try DMAUnmapRequest(decoding: bytes[...])
        #expect(u == DMAUnmapRequest(address: 0xC0000, size: 0x40000))
        #expect(u.encode() == bytes)
        var dirty = bytes
        dirty[4] = 1  // dirty bitmap: unsupported
        #expect(throws: WireError.self) { try DMAUnmapRequest(decoding: dirty[...]) }
    }
}

@Suite struct InfoTests {
    @Test func deviceInfoGolden() throws {
        let reply = DeviceInfo(flags: DeviceInfo.flagReset | DeviceInfo.flagPCI, regionCount: 9, irqCount: 5)
        #expect(reply.encode() == hex("10000000 03000000 09000000 05000000"))
        #expect(try DeviceInfo(decoding: reply.encode()[...]) == reply)
        #expect(throws: WireError.self) { try DeviceInfo.validateRequest(hex("08000000")[...]) }
    }

    @Test func regionInfoGolden() throws {
        let request = hex("20000000 00000000 07000000 00000000 0000000000000000 0000000000000000")
        #expect(try RegionInfo.requestedIndex(request[...]) == 7)
        let reply = RegionInfo(flags: [.read, .write], index: 0, size: 32)
        #expect(reply.encode() == hex("20000000 03000000 00000000 00000000 2000000000000000 0000000000000000"))
    }

    @Test func irqInfoGolden() throws {
        let reply = IRQInfo(flags: [.eventfd, .maskable, .automasked], index: 0, count: 1)
        #expect(reply.encode() == hex("10000000 07000000 00000000 01000000"))
        #expect(try IRQInfo.requestedIndex(hex("10000000 00000000 03000000 00000000")[...]) == 3)
    }
}

@Suite struct SetIRQsTests {
    @Test func triggerEventfdGolden() throws {
        // QEMU enabling INTx: flags 0x24 (DATA_EVENTFD | ACTION_TRIGGER), index 0, start 0, count 1.
        let bytes = hex("14000000 24000000 00000000 00000000 01000000")
        let s = try SetIRQsRequest(decoding: bytes[...])
        #expect(s == SetIRQsRequest(index: 0, start: 0, count: 1, data: .eventfd, action: .trigger))
        #expect(s.encode() == bytes)
    }

    @Test func unmaskNoneGolden() throws {
        let bytes = hex("14000000 11000000 00000000 00000000 01000000")
        #expect(try SetIRQsRequest(decoding: bytes[...]) == SetIRQsRequest(index: 0, start: 0, count: 1, data: .none, action: .unmask))
    }

    @Test func boolData() throws {
        let bytes = hex("16000000 22000000 00000000 00000000 02000000 0100")
        let s = try SetIRQsRequest(decoding: bytes[...])
        #expect(s.data == .bool([true, false]))
        #expect(s.encode() == bytes)
        #expect(throws: WireError.self) { try SetIRQsRequest(decoding: bytes[0..<21]) }
    }

    @Test func ambiguousFlagsRejected() {
        for flags in ["05", "30", "04", "64"] {  // two data types, two actions, no action, unknown bit
            let bytes = hex("14000000 \(flags)000000 00000000 00000000 01000000")
            #expect(throws: WireError.self) { try SetIRQsRequest(decoding: bytes[...]) }
        }
    }
}

@Suite struct RegionAccessTests {
    @Test func readGolden() throws {
        // offset 0x10 (data port), region 0, count 4.
        let bytes = hex("1000000000000000 00000000 04000000")
        let r = try RegionReadRequest(decoding: bytes[...], maxCount: 4096)
        #expect(r.access == RegionAccess(offset: 0x10, region: 0, count: 4))
        #expect(r.encode() == bytes)
        #expect(RegionReadRequest.reply(access: r.access, data: [1, 2, 3, 4]) == bytes + [1, 2, 3, 4])
    }

    @Test func writeGolden() throws {
        // outb 0x21 to CR (offset 0) of BAR0.
        let bytes = hex("0000000000000000 00000000 01000000 21")
        let w = try RegionWriteRequest(decoding: bytes[...], maxCount: 4096)
        #expect(w == RegionWriteRequest(offset: 0, region: 0, data: [0x21]))
        #expect(w.encode() == bytes)
        #expect(RegionWriteRequest.reply(access: w.access) == Array(bytes[0..<16]))
    }

    @Test func rejectsBadCounts() {
        let zero = hex("0000000000000000 00000000 00000000")
        #expect(throws: WireError.self) { try RegionReadRequest(decoding: zero[...], maxCount: 4096) }
        let big = hex("0000000000000000 00000000 01100000")
        #expect(throws: WireError.self) { try RegionReadRequest(decoding: big[...], maxCount: 4096) }
        let wrap = hex("ffffffffffffffff 00000000 02000000")
        #expect(throws: WireError.self) { try RegionReadRequest(decoding: wrap[...], maxCount: 4096) }
        let short = hex("0000000000000000 00000000 04000000 0102")
        #expect(throws: WireError.self) { try RegionWriteRequest(decoding: short[...], maxCount: 4096) }
        let long = hex("0000000000000000 00000000 01000000 0102")
        #expect(throws: WireError.self) { try RegionWriteRequest(decoding: long[...], maxCount: 4096) }
    }

    @Test func writeMultiGolden() throws {
        let bytes = hex("""
            0200000000000000
            0000000000000000 00000000 01000000 2100000000000000
            1000000000000000 00000000 04000000 AABBCCDD00000000
            """)
        let m = try RegionWriteMultiRequest(decoding: bytes[...])
        #expect(m.writes == [RegionWriteRequest(offset: 0, region: 0, data: [0x21]),
                             RegionWriteRequest(offset: 0x10, region: 0, data: [0xAA, 0xBB, 0xCC, 0xDD])])
        #expect(m.encode() == bytes)
    }

    @Test func writeMultiRejectsMalformed() {
        let zero = hex("0000000000000000")
        #expect(throws: WireError.self) { try RegionWriteMultiRequest(decoding: zero[...]) }
        let lying = hex("0500000000000000 0000000000000000 00000000 01000000 2100000000000000")
        #expect(throws: WireError.self) { try RegionWriteMultiRequest(decoding: lying[...]) }
        let wide = hex("0100000000000000 0000000000000000 00000000 09000000 2100000000000000")
        #expect(throws: WireError.self) { try RegionWriteMultiRequest(decoding: wide[...]) }
        let huge = hex("ffffffffffffffff")
        #expect(throws: WireError.self) { try RegionWriteMultiRequest(decoding: huge[...]) }
    }
}
