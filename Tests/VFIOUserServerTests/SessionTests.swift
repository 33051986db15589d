import DeviceBus
import Testing
import VFIOUserServer
import VFIOUserWire
import VPIOSystem

@Suite struct NegotiationTests {
    @Test func versionReplyAdvertisesLimits() throws {
        var h = try Harness(negotiate: false)
        let (reply, payload) = try h.send(.version, VersionMessage(major: 0, minor: 7, capabilities: Capabilities()).encode())
        #expect(reply.isReply && !reply.flags.contains(.error))
        let v = try VersionMessage(decoding: payload[...])
        #expect(v.major == 0 && v.minor == 1)
        #expect(v.capabilities.maxDataTransferSize == 4096 && v.capabilities.writeMultiple == true)
    }

    @Test func commandsBeforeVersionAreRefused() throws {
        var h = try Harness(negotiate: false)
        let (reply, _) = try h.send(.deviceGetInfo, DeviceInfo(flags: 0, regionCount: 0, irqCount: 0).encode())
        #expect(reply.flags.contains(.error) && reply.error == Errno.EINVAL)
    }

    @Test func secondVersionAndWrongMajorAreRefused() throws {
        var h = try Harness()
        #expect(try h.send(.version, VersionMessage(major: 0, minor: 1, capabilities: Capabilities()).encode()).0.error == Errno.EINVAL)
        var fresh = try Harness(negotiate: false)
        #expect(try fresh.send(.version, VersionMessage(major: 1, minor: 0, capabilities: Capabilities()).encode()).0.error == Errno.ENOTSUP)
    }
}

@Suite struct InfoCommandTests {
    @Test func deviceAndRegionInfo() throws {
        var h = try Harness()
        let (_, info) = try h.send(.deviceGetInfo, DeviceInfo(flags: 0, regionCount: 0, irqCount: 0).encode())
        #expect(try DeviceInfo(decoding: info[...]) == DeviceInfo(flags: 3, regionCount: 9, irqCount: 5))
        func region(_ i: UInt32) throws -> RegionInfo {
            var h2 = h
            let (_, p) = try h2.send(.deviceGetRegionInfo, RegionInfo(flags: [], index: i, size: 0).encode())
            h = h2
            return try RegionInfo(decoding: p[...])
        }
        #expect(try region(0) == RegionInfo(flags: [.read, .write], index: 0, size: 32))
        #expect(try region(7) == RegionInfo(flags: [.read, .write], index: 7, size: 256))
        #expect(try region(6).size == 0)  // no expansion ROM
        #expect(try region(1).size == 0)
        let (bad, _) = try h.send(.deviceGetRegionInfo, RegionInfo(flags: [], index: 9, size: 0).encode())
        #expect(bad.error == Errno.EINVAL)
    }

    @Test func irqInfo() throws {
        var h = try Harness()
        let (_, p) = try h.send(.deviceGetIRQInfo, IRQInfo(flags: [], index: 0, count: 0).encode())
        #expect(try IRQInfo(decoding: p[...]) == IRQInfo(flags: [.eventfd, .maskable, .automasked], index: 0, count: 1))
        let (_, msi) = try h.send(.deviceGetIRQInfo, IRQInfo(flags: [], index: 1, count: 0).encode())
        #expect(try IRQInfo(decoding: msi[...]).count == 0)
        #expect(try h.send(.deviceGetIRQInfo, IRQInfo(flags: [], index: 5, count: 0).encode()).0.error == Errno.EINVAL)
    }

    /// One error-notification vector, so that QEMU enables error recovery instead of warning at boot;
    /// its eventfd is kept and dropped with the connection.
    @Test func theErrorIRQTakesOneEventFD() throws {
        var h = try Harness()
        let (_, p) = try h.send(.deviceGetIRQInfo, IRQInfo(flags: [], index: IRQIndex.err.rawValue, count: 0).encode())
        #expect(try IRQInfo(decoding: p[...]).count == 1)
        let fd = try EventFD()
        let set = SetIRQsRequest(index: IRQIndex.err.rawValue, start: 0, count: 1, data: .eventfd, action: .trigger)
        let (reply, _) = try h.send(.deviceSetIRQs, set.encode(), descriptors: [OwnedDescriptor(try fd.descriptor.duplicate())])
        #expect(!reply.flags.contains(.error))
        #expect(h.session.errorEvent != nil)
        h.session.close()
        #expect(h.session.errorEvent == nil)
    }
}

@Suite struct RegionCommandTests {
    @Test func barAccessesAtEachWidth() throws {
        var h = try Harness()
        for width in AccessWidth.allCases {
            let (reply, payload) = try h.send(.regionRead, RegionReadRequest(access: RegionAccess(offset: 0x10, region: 0, count: UInt32(width.rawValue))).encode())
            #expect(!reply.flags.contains(.error))
            #expect(payload.count == 16 + width.rawValue)
            #expect(h.device.accesses.last == RecordingDevice.Access(write: false, offset: 0x10, width: width,
                                                                    value: 0x1312_1110 & width.mask))
            #expect(Array(payload[16...]) == Array([0x10, 0x11, 0x12, 0x13].prefix(width.rawValue)))
        }
        try h.send(.regionWrite, RegionWriteRequest(offset: 0x10, region: 0, data: [1, 2, 3, 4]).encode())
        #expect(h.device.accesses.last == RecordingDevice.Access(write: true, offset: 0x10, width: .dword, value: 0x0403_0201))
        #expect(h.endpoint.counters.barReads == 3 && h.endpoint.counters.barWrites == 1)
    }

    @Test func longTransferSplitsIntoAlignedAccesses() throws {
        var h = try Harness()
        try h.send(.regionWrite, RegionWriteRequest(offset: 1, region: 0, data: [UInt8](1...7)).encode())
        #expect(h.device.accesses.map { "\($0.offset):\($0.width.rawValue)" } == ["1:1", "2:2", "4:4"])
    }

    @Test func outOfRangeAndAbsentRegionsAreRefused() throws {
        var h = try Harness()
        for (offset, region, count) in [(31, 0, 2), (32, 0, 1), (0, 1, 1), (0, 6, 4), (250, 7, 8), (1 << 40, 7, 1)] as [(UInt64, UInt32, UInt32)] {
            let (reply, _) = try h.send(.regionRead, RegionReadRequest(access: RegionAccess(offset: offset, region: region, count: count)).encode())
            #expect(reply.error == Errno.EINVAL, "offset \(offset) region \(region) count \(count)")
        }
        #expect(h.device.accesses.isEmpty)
    }

    @Test func oversizedTransferRefused() throws {
        var h = try Harness()
        let (reply, _) = try h.send(.regionRead, RegionReadRequest(access: RegionAccess(offset: 0, region: 7, count: 8192)).encode())
        #expect(reply.error == Errno.EINVAL)
    }

    @Test func configSpaceThroughRegion7() throws {
        var h = try Harness()
        let (_, id) = try h.send(.regionRead, RegionReadRequest(access: RegionAccess(offset: 0, region: 7, count: 4)).encode())
        #expect(Array(id[16...]) == [0xEC, 0x10, 0x29, 0x80])
        try h.send(.regionWrite, RegionWriteRequest(offset: 0x10, region: 7, data: [0xFF, 0xFF, 0xFF, 0xFF]).encode())
        let (_, bar) = try h.send(.regionRead, RegionReadRequest(access: RegionAccess(offset: 0x10, region: 7, count: 4)).encode())
        #expect(Array(bar[16...]) == [0xE1, 0xFF, 0xFF, 0xFF])
        // The whole space in one read, as QEMU does at realize.
        let (_, all) = try h.send(.regionRead, RegionReadRequest(access: RegionAccess(offset: 0, region: 7, count: 256)).encode())
        #expect(all.count == 16 + 256)
    }

    @Test func writeMultiAndNoReply() throws {
        var h = try Harness()
        let batch = RegionWriteMultiRequest(writes: [RegionWriteRequest(offset: 0, region: 0, data: [0x21]),
                                                     RegionWriteRequest(offset: 0x0F, region: 0, data: [0xFF])])
        try h.sendRaw(MessageHeader.message(id: 40, command: Command.regionWriteMulti.rawValue, flags: .noReply, payload: batch.encode()))
        #expect(h.stream.outbound.isEmpty)
        #expect(h.device.accesses.map(\.offset) == [0, 0x0F])
        try h.sendRaw(MessageHeader.message(id: 41, command: Command.regionWrite.rawValue, flags: .noReply,
                                            payload: RegionWriteRequest(offset: 1, region: 0, data: [5]).encode()))
        #expect(h.stream.outbound.isEmpty)
    }

    @Test func resetReachesTheDevice() throws {
        var h = try Harness()
        #expect(try !h.send(.deviceReset, []).0.flags.contains(.error))
        #expect(h.device.resets == 1)
    }
}

@Suite struct MalformedMessageTests {
    @Test func unknownCommandAndTruncatedPayloadGetErrnoAndTheSessionGoesOn() throws {
        var h = try Harness()
        try h.sendRaw(MessageHeader.message(id: 9, command: 99, flags: [], payload: [1, 2, 3]))
        #expect(h.stream.popReply()?.0 == MessageHeader(messageID: 9, command: 99, size: 16, flags: [.reply, .error], error: Errno.ENOSYS))
        try h.sendRaw(MessageHeader.message(id: 10, command: Command.regionRead.rawValue, flags: [], payload: [0, 0, 0]))
        #expect(h.stream.popReply()?.0.error == Errno.EINVAL)
        try h.sendRaw(MessageHeader.message(id: 11, command: Command.dmaMap.rawValue, flags: [], payload: []))
        #expect(h.stream.popReply()?.0.error == Errno.EINVAL)
        // Still serving.
        #expect(try !h.send(.deviceGetInfo, DeviceInfo(flags: 0, regionCount: 0, irqCount: 0).encode()).0.flags.contains(.error))
        #expect(h.session.counters.rejected == 3)
    }

    @Test func oversizedHeaderClosesTheConnectionWithoutAllocating() throws {
        let h = try Harness()
        h.stream.push(hexHeader(size: 0x7FFF_FFFF))
        #expect(throws: ChannelError.self) { try h.session.serveAvailable(reading: true) }
    }

    @Test func truncatedMessageClosesTheConnection() throws {
        let h = try Harness()
        h.stream.push(Array(MessageHeader.message(id: 1, command: 9, flags: [], payload: [UInt8](repeating: 0, count: 16)).prefix(20)))
        #expect(throws: ChannelError.self) { while try h.session.serveAvailable(reading: true) {} }
    }

    @Test func cleanEOFBetweenMessagesEndsQuietly() throws {
        let h = try Harness()
        #expect(try h.session.serveAvailable(reading: true) == false)
    }

    /// The server sends no commands, so a reply is unexpected: it gets an EINVAL error reply, never
    /// silence (issue 11), and the session goes on.
    @Test func anUnexpectedReplyFromTheClientIsAnsweredWithAnError() throws {
        var h = try Harness()
        try h.sendRaw(MessageHeader.message(id: 3, command: 9, flags: .reply, payload: []))
        let header = try MessageHeader(decoding: h.stream.outbound[0..<MessageHeader.size], maxMessageSize: 1 << 20)
        #expect(header.messageID == 3 && header.flags.contains(.error) && header.error == Errno.EINVAL)
        #expect(h.session.counters.rejected == 1)
    }

    @Test func descriptorsWithTheWrongCommandAreRefusedAndClosed() throws {
        var h = try Harness()
        let efd = try EventFD()
        let dup = try efd.descriptor.duplicate()
        let (reply, _) = try h.send(.deviceGetInfo, DeviceInfo(flags: 0, regionCount: 0, irqCount: 0).encode(),
                                    descriptors: [OwnedDescriptor(dup)])
        #expect(reply.error == Errno.EINVAL)
    }

    func hexHeader(size: UInt32) -> [UInt8] {
        var w = ByteWriter()
        MessageHeader(messageID: 1, command: 9, size: size).encode(into: &w)
        return w.bytes
    }
}

@Suite struct AccessObserverTests {
    @Test func observerSeesEveryDeviceAccessWithItsValue() throws {
        var h = try Harness()
        var seen: [BusAccess] = []
        h.endpoint.accessHook = { seen.append($0); return $0.value }
        try h.send(.regionWrite, RegionWriteRequest(offset: 0, region: 0, data: [0x22]).encode())
        try h.send(.regionRead, RegionReadRequest(access: RegionAccess(offset: 0x10, region: 0, count: 4)).encode())
        try h.send(.regionRead, RegionReadRequest(access: RegionAccess(offset: 0, region: 7, count: 4)).encode())  // config: not a device access
        #expect(seen == [BusAccess(direction: .write, region: 0, offset: 0, width: .byte, value: 0x22),
                         BusAccess(direction: .read, region: 0, offset: 0x10, width: .dword, value: 0x1312_1110)])
    }

    @Test func hookCanReplaceOrAbsorbAWrite() throws {
        var h = try Harness()
        h.endpoint.accessHook = { $0.offset == 3 ? nil : $0.value ^ 0xFF }
        try h.send(.regionWrite, RegionWriteRequest(offset: 0, region: 0, data: [0x0F]).encode())
        try h.send(.regionWrite, RegionWriteRequest(offset: 3, region: 0, data: [0x01]).encode())
        #expect(h.device.accesses == [RecordingDevice.Access(write: true, offset: 0, width: .byte, value: 0xF0)])
    }
}
