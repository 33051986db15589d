import DeviceBus
import Testing
import VFIOUserServer
import VFIOUserWire
import VPIOSystem

@Suite struct InterruptTests {
    func installTrigger(_ h: inout Harness) throws -> EventFD {
        let efd = try EventFD()
        let (reply, _) = try h.send(.deviceSetIRQs, SetIRQsRequest(index: 0, start: 0, count: 1, data: .eventfd, action: .trigger).encode(),
                                    descriptors: [OwnedDescriptor(try efd.descriptor.duplicate())])
        #expect(!reply.flags.contains(.error))
        return efd
    }

    @Test func levelSignalsOnceUntilUnmasked() throws {
        var h = try Harness()
        let efd = try installTrigger(&h)
        h.line.set(true)
        #expect(try efd.drain() == 1)
        h.line.set(false)
        h.line.set(true)  // automasked: no second signal before the unmask
        #expect(try efd.drain() == 0)
        try h.send(.deviceSetIRQs, SetIRQsRequest(index: 0, start: 0, count: 1, data: .none, action: .unmask).encode())
        #expect(try efd.drain() == 1)  // still high at unmask: signal again
        h.line.set(false)
        try h.send(.deviceSetIRQs, SetIRQsRequest(index: 0, start: 0, count: 1, data: .none, action: .unmask).encode())
        #expect(try efd.drain() == 0)
    }

    @Test func interruptStatusInConfigFollowsTheLine() throws {
        var h = try Harness()
        h.line.set(true)
        let (_, p) = try h.send(.regionRead, RegionReadRequest(access: RegionAccess(offset: 6, region: 7, count: 2)).encode())
        #expect(p[16] & 0x08 != 0)
        h.line.set(false)
        let (_, q) = try h.send(.regionRead, RegionReadRequest(access: RegionAccess(offset: 6, region: 7, count: 2)).encode())
        #expect(q[16] & 0x08 == 0)
    }

    @Test func interruptDisableBitSuppressesSignals() throws {
        var h = try Harness()
        let efd = try installTrigger(&h)
        try h.send(.regionWrite, RegionWriteRequest(offset: 4, region: 7, data: [0x01, 0x04]).encode())
        h.line.set(true)
        #expect(try efd.drain() == 0)
        try h.send(.regionWrite, RegionWriteRequest(offset: 4, region: 7, data: [0x01, 0x00]).encode())
        #expect(try efd.drain() == 1)
    }

    @Test func disconnectDropsTheTriggerButKeepsTheDevice() throws {
        var h = try Harness()
        let efd = try installTrigger(&h)
        h.session.close()
        h.line.set(true)
        #expect(try efd.drain() == 0)
        #expect(h.line.isAsserted)
    }

    @Test func malformedSetIRQsRefused() throws {
        var h = try Harness()
        // Eventfd data but no descriptor.
        #expect(try h.send(.deviceSetIRQs, SetIRQsRequest(index: 0, start: 0, count: 1, data: .eventfd, action: .trigger).encode()).0.error == Errno.EINVAL)
        // INTx has one vector.
        #expect(try h.send(.deviceSetIRQs, SetIRQsRequest(index: 0, start: 1, count: 1, data: .none, action: .unmask).encode()).0.error == Errno.EINVAL)
        // MSI: only disable is meaningful.
        #expect(try h.send(.deviceSetIRQs, SetIRQsRequest(index: 1, start: 0, count: 0, data: .none, action: .trigger).encode()).0.error == 0)
        #expect(try h.send(.deviceSetIRQs, SetIRQsRequest(index: 1, start: 0, count: 1, data: .none, action: .trigger).encode()).0.error == Errno.EINVAL)
    }
}
