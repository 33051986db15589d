import DeviceBus
import Logging
import VFIOUserServer
import VPIOSystem

/// Joins a NIC to a TAP interface: frames the NIC transmits are written to the TAP; frames from
/// the TAP are taken only while the NIC's receive ring has room, so the peer's TCP sees a slow
/// link instead of loss (the NE2000 ring is ~13 KiB and would otherwise overflow).
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

    public let tap: TapDevice
    public weak var device: NetworkBusDevice?
    public private(set) var counters = Counters()
    let logger: Logger

    public init(tap: TapDevice, logger: Logger) {
        self.tap = tap
        self.logger = logger
    }

    public var descriptor: FileDescriptor { tap.descriptor }

    public var wantsReadable: Bool { device?.canReceiveFrame ?? false }

    public func readable() {
        guard let device else { return }
        for _ in 0..<Self.batch {
            guard device.canReceiveFrame else {
                counters.ringFullStalls += 1
                return
            }
            let frame: [UInt8]?
            do {
                frame = try tap.readFrame(maxLength: Self.maxFrame)
            } catch {
                logger.warning("TAP read failed", metadata: ["error": "\(error)"])
                return
            }
            guard let frame else { return }
            if device.receive(frame: frame) {
                counters.framesToGuest += 1
                counters.bytesToGuest += frame.count
            } else {
                counters.framesDiscardedByDevice += 1
            }
        }
    }

    /// The NIC's frame sink.
    public func transmit(_ frame: [UInt8]) {
        do {
            try tap.writeFrame(frame)
            counters.framesFromGuest += 1
            counters.bytesFromGuest += frame.count
        } catch {
            counters.writeErrors += 1
            logger.warning("TAP write failed", metadata: ["error": "\(error)", "length": "\(frame.count)"])
        }
    }
}
