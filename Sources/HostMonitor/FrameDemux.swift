import DeviceBus
import DeviceSharing

/// The wire's frames for the guests of a shared NE2000: by destination MAC (broadcast and multicast to
/// every guest), straight to the owner while its ring has room, queued per guest otherwise (bounded,
/// drops counted); a guest with frames queued wants the device. Queued frames go in after the guest's
/// switch-in, as its ring takes them (`deliverQueued`). The wire is held back (back-pressure) while any
/// queue is full.
public final class FrameDemux: FrameReceiver {
    public struct Counters: Codable, Equatable, Sendable {
        public var delivered = 0
        public var queued = 0
        public var dropped = 0
    }

    /// Frames a guest's queue holds at most.
    public static let queueBound = 64
    let guests: [(mac: [UInt8], gate: ReceiveGate)]
    let switcher: DeviceSwitcher
    private var queues: [[[UInt8]]]
    public private(set) var counters: [Counters]
    /// Unicast frames for no guest of this device.
    public private(set) var unclaimed = 0

    init(guests: [(mac: [UInt8], gate: ReceiveGate)], switcher: DeviceSwitcher) {
        self.guests = guests
        self.switcher = switcher
        queues = Array(repeating: [], count: guests.count)
        counters = Array(repeating: Counters(), count: guests.count)
    }

    public var canReceiveFrame: Bool { queues.allSatisfy { $0.count < Self.queueBound } }

    @discardableResult
    public func receive(frame: [UInt8]) -> Bool {
        guard frame.count >= 6 else { return false }
        let destination = Array(frame.prefix(6))
        let targets = destination[0] & 0x01 != 0 ? Array(guests.indices) : guests.indices.filter { guests[$0].mac == destination }
        for target in targets { take(frame, for: target) }
        if targets.isEmpty { unclaimed += 1 }
        return !targets.isEmpty
    }

    private func take(_ frame: [UInt8], for guest: Int) {
        if switcher.owner == guest, !switcher.ownerShouldYield(at: .now), queues[guest].isEmpty, guests[guest].gate.canReceiveFrame {
            guests[guest].gate.receive(frame: frame)
            counters[guest].delivered += 1
            return
        }
        guard queues[guest].count < Self.queueBound else {
            counters[guest].dropped += 1
            return
        }
        queues[guest].append(frame)
        counters[guest].queued += 1
        if switcher.owner != guest { switcher.wants(guest, at: .now) }
    }

    /// The owner's queued frames, while its ring takes them and its turn lasts (an owner whose turn is
    /// over gets no new frames, so it can finish and be switched out).
    public func deliverQueued() {
        guard let owner = switcher.owner, !switcher.ownerShouldYield(at: .now) else { return }
        while let frame = queues[owner].first, guests[owner].gate.canReceiveFrame {
            queues[owner].removeFirst()
            guests[owner].gate.receive(frame: frame)
            counters[owner].delivered += 1
        }
    }

    /// Frames waiting for `guest`.
    public func waiting(for guest: Int) -> Int { queues[guest].count }
}
