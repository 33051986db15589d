import DeviceBus
import DeviceSharing
import HostMonitor
import Logging
import Testing

/// The wire's frames on a shared device: the host hands the device only the owner's, whatever the
/// owner programs into PAR or RCR.
@Suite struct SharedDeviceTests {
    static let a: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x57]
    static let b: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x58]

    /// Two guests; a's turn never ends on its own (no switch happens at its CR writes however slow the test).
    static func shared(wire: @escaping FrameSink = { _ in }) throws -> SharedDevice {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var policy = SharingPolicy()
        policy.quantum = .seconds(3600)
        policy.quantumAccesses = .max
        return try SharedDevice(specs: [SharedGuestSpec(name: "a", mac: a, mode: .vmmModel), SharedGuestSpec(name: "b", mac: b, mode: .vmmModel)],
                                deviceMAC: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56], policy: policy, live: false, logger: logger, transmit: wire)
    }

    /// Guest a's driver, through its endpoint (as its vfio-user session would, once admitted).
    static func out(_ guest: SharedGuest, _ offset: UInt8, _ value: UInt8) throws {
        try guest.endpoint.write(region: 0, offset: UInt64(offset), data: [value])
    }

    static func currentPage(_ guest: SharedGuest) throws -> UInt8 {
        try out(guest, 0x00, 0x62)
        let curr = try guest.endpoint.read(region: 0, offset: 0x07, count: 1)[0]
        try out(guest, 0x00, 0x22)
        return curr
    }

    static func frame(to destination: [UInt8], tag: UInt8) -> [UInt8] {
        destination + [0x02, 0, 0, 0, 0, tag, 0x08, 0x00] + [UInt8](repeating: tag, count: 86)
    }

    /// Promiscuous, with b's address in PAR: a still gets none of b's frames; b gets them after its switch-in.
    @Test func theOwnerNeverGetsAnotherGuestsUnicastFrames() throws {
        let shared = try Self.shared()
        let owner = shared.guests[0]
        #expect(shared.switcher.request(0, at: .now) == .proceed)
        for (o, v): (UInt8, UInt8) in [(0x00, 0x21), (0x0E, 0x49), (0x01, 0x46), (0x03, 0x46), (0x02, 0x80), (0x07, 0xFF), (0x00, 0x61)] {
            try Self.out(owner, o, v)
        }
        for (i, byte) in Self.b.enumerated() { try Self.out(owner, UInt8(1 + i), byte) }
        for (o, v): (UInt8, UInt8) in [(0x07, 0x47), (0x00, 0x22), (0x0C, 0x14), (0x0F, 0x00)] { try Self.out(owner, o, v) }
        #expect(try Self.currentPage(owner) == 0x47)
        shared.demux.receive(frame: Self.frame(to: Self.b, tag: 1))
        #expect(try Self.currentPage(owner) == 0x47, "b's frame never reached the device in a's turn")
        #expect(shared.demux.waiting(for: 1) == 1 && shared.switcher.hasWaiting, "queued for b, which now wants the device")
        shared.demux.receive(frame: Self.frame(to: Self.a, tag: 2))
        #expect(try Self.currentPage(owner) == 0x48, "a's own frame went in")
        shared.demux.receive(frame: Self.frame(to: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], tag: 3))
        #expect(try Self.currentPage(owner) == 0x49 && shared.demux.waiting(for: 1) == 2, "a broadcast for both")
        #expect(shared.demux.counters[0].delivered == 2 && shared.demux.counters[1].queued == 2)
    }

    @Test func aFullQueueDropsAndHoldsTheWireBack() throws {
        let shared = try Self.shared()
        #expect(shared.switcher.request(0, at: .now) == .proceed)
        for tag in 0..<FrameDemux.queueBound { shared.demux.receive(frame: Self.frame(to: Self.b, tag: UInt8(tag))) }
        #expect(!shared.demux.canReceiveFrame, "back-pressure once b's queue is full")
        shared.demux.receive(frame: Self.frame(to: Self.b, tag: 0xEE))
        #expect(shared.demux.counters[1].dropped == 1 && shared.demux.waiting(for: 1) == FrameDemux.queueBound)
    }

    /// The owner transmits a frame as b (b's source address): it never reaches the wire; its own does.
    @Test func aGuestCannotSpeakOnTheWireAsAnother() throws {
        final class Wire { var frames: [[UInt8]] = [] }
        let wire = Wire()
        let shared = try Self.shared { wire.frames.append($0) }
        let owner = shared.guests[0]
        #expect(shared.switcher.request(0, at: .now) == .proceed)
        for source in [Self.b, Self.a] {
            let frame = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + source + [0x08, 0x00] + [UInt8](repeating: 0x42, count: 46)
            for (o, v): (UInt8, UInt8) in [(0x00, 0x21), (0x0E, 0x49), (0x00, 0x22), (0x0A, 60), (0x0B, 0), (0x08, 0), (0x09, 0x40), (0x00, 0x12)] {
                try Self.out(owner, o, v)
            }
            for at in stride(from: 0, to: 60, by: 2) {
                try owner.endpoint.write(region: 0, offset: 0x10, data: [frame[at], frame[at + 1]])
            }
            for (o, v): (UInt8, UInt8) in [(0x07, 0x40), (0x04, 0x40), (0x05, 60), (0x06, 0), (0x00, 0x26), (0x07, 0x0A)] { try Self.out(owner, o, v) }
        }
        #expect(shared.spoofedFrames == 1)
        #expect(wire.frames.map { Array($0[6..<12]) } == [Self.a], "only a's own frame went out")
    }
}
