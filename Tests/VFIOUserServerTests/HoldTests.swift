import DeviceBus
import Foundation
import Testing
import VFIOUserServer
import VFIOUserWire

/// A shared device's admission, as the test sets it.
final class Gate: AccessAdmission {
    var access = true
    var reply = true
    func mayAccess() -> Bool { access }
    func mayReply() -> Bool { reply }
}

/// Holding a client's device accesses while another guest owns the shared device.
@Suite struct HoldTests {
    static func read(_ offset: UInt64, region: UInt32 = 0) -> [UInt8] {
        RegionReadRequest(access: RegionAccess(offset: offset, region: region, count: 1)).encode()
    }

    @Test func aHeldAccessIsServedWhenAdmittedAndNothingElseMeanwhile() throws {
        let gate = Gate()
        var h = try Harness(admission: gate)
        gate.access = false
        let (reply, _) = try h.send(.regionRead, Self.read(0x07))
        #expect(reply.size == 0, "no reply while held")
        #expect(h.device.accesses.isEmpty && h.session.isHolding && h.session.counters.held == 1)
        gate.access = true
        _ = try h.session.serveAvailable(reading: false)
        let (late, payload) = try #require(h.stream.popReply())
        #expect(!late.flags.contains(.error) && payload.last == 0x07)
        #expect(h.device.accesses.map(\.offset) == [0x07] && !h.session.isHolding)
    }

    @Test func configSpaceIsNeverHeld() throws {
        let gate = Gate()
        var h = try Harness(admission: gate)
        gate.access = false
        let (reply, payload) = try h.send(.regionRead, RegionReadRequest(access: RegionAccess(offset: 0, region: 7, count: 4)).encode())
        #expect(!reply.flags.contains(.error) && payload.suffix(4) == [0xEC, 0x10, 0x29, 0x80])
        #expect(!h.session.isHolding)
    }

    /// Switched away at this access: it reached the device, its reply waits for the device to come back.
    @Test func aReplyHeldAfterTheAccessGoesWhenAdmitted() throws {
        let gate = Gate()
        var h = try Harness(admission: gate)
        gate.reply = false
        let (reply, _) = try h.send(.regionWrite, RegionWriteRequest(offset: 0, region: 0, data: [0x22]).encode())
        #expect(reply.size == 0)
        #expect(h.device.accesses == [RecordingDevice.Access(write: true, offset: 0, width: .byte, value: 0x22)])
        gate.access = false
        _ = try h.session.serveAvailable(reading: false)
        #expect(h.stream.popReply() == nil, "still away")
        gate.access = true
        _ = try h.session.serveAvailable(reading: false)
        let (late, _) = try #require(h.stream.popReply())
        #expect(!late.flags.contains(.error) && h.device.accesses.count == 1, "served once, answered once")
    }

    /// The server's own bound: a hold that never ends fails the access (EBUSY) instead of waiting.
    @Test func aHoldPastTheServersBoundFailsWithEBUSY() throws {
        let gate = Gate()
        var limits = ServerLimits()
        limits.holdMilliseconds = 30
        var h = try Harness(admission: gate, limits: limits)
        gate.access = false
        try h.send(.regionRead, Self.read(0x07))
        usleep(40_000)
        _ = try h.session.serveAvailable(reading: false)
        let (late, payload) = try #require(h.stream.popReply())
        #expect(late.flags.contains(.error) && late.error == Errno.EBUSY, "\(late) \(payload)")
        #expect(h.device.accesses.isEmpty && h.session.counters.holdTimeouts == 1 && !h.session.isHolding)
    }
}
