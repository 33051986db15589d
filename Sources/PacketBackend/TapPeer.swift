import DeviceBus
import Logging
import VFIOUserServer
import VPIOSystem

/// The NIC's side of a TAP interface that sends: its frame sink. Made before the NIC (the NIC is
/// created with `transmit` as its sink); `TapPeer` reads the other way once the NIC exists.
public final class TapWire {
    public let tap: TapDevice
    public private(set) var framesFromGuest = 0
    public private(set) var bytesFromGuest = 0
    public private(set) var writeErrors = 0
    let logger: Logger

    public init(tap: TapDevice, logger: Logger) {
        self.tap = tap
        self.logger = logger
    }

    /// The NIC's frame sink.
    public func transmit(_ frame: [UInt8]) {
        do {
            try tap.writeFrame(frame)
            framesFromGuest += 1
            bytesFromGuest += frame.count
        } catch {
            writeErrors += 1
            logger.warning("TAP write failed", metadata: ["error": "\(error)", "length": "\(frame.count)"])
        }
    }
}

/// Joins a NIC to a TAP interface: frames from the TAP are taken only while the NIC's receive ring has
/// room, so the peer's TCP sees a slow link instead of loss (the NE2000 ring is ~13 KiB and would
/// otherwise overflow); frames the NIC transmits go out through the `TapWire`.
public final class TapPeer: PollSource {
    public struct Counters: Codable, Equatable, Sendable {
        public var framesToGuest = 0
        public var bytesToGuest = 0
        public var framesFromGuest = 0
        public var bytesFromGuest = 0
        /// Frames the NIC discarded on arrival (receiver stopped or address filter).
        public var framesDiscardedByDevice = 0
        /// Times delivery stopped because the receive ring filled up.
        public var ringFullStalls = 0
        public var writeErrors = 0
    }

    /// Frames delivered per wake-up at most, so guest accesses are not starved by a burst.
    static let batch = 16
    /// Ethernet MTU 1500 + header + VLAN tag; anything longer is truncated by the read.
    static let maxFrame = 1522

    public let wire: TapWire
    let device: FrameReceiver
    private var received = Counters()
    let logger: Logger

    public init(wire: TapWire, device: FrameReceiver, logger: Logger) {
        self.wire = wire
        self.device = device
        self.logger = logger
    }

    /// Both directions' counters.
    public var counters: Counters {
        var all = received
        all.framesFromGuest = wire.framesFromGuest
        all.bytesFromGuest = wire.bytesFromGuest
        all.writeErrors = wire.writeErrors
        return all
    }

    public var descriptor: FileDescriptor { wire.tap.descriptor }

    public var wantsReadable: Bool { device.canReceiveFrame }

    public func readable() {
        for _ in 0..<Self.batch {
            guard device.canReceiveFrame else {
                received.ringFullStalls += 1
                return
            }
            let frame: [UInt8]?
            do {
                frame = try wire.tap.readFrame(maxLength: Self.maxFrame)
            } catch {
                logger.warning("TAP read failed", metadata: ["error": "\(error)"])
                return
            }
            guard let frame else { return }
            if device.receive(frame: frame) {
                received.framesToGuest += 1
                received.bytesToGuest += frame.count
            } else {
                received.framesDiscardedByDevice += 1
            }
        }
    }
}
