import DeviceBus
import PCIFunction
import VFIOUserWire

/// A PCI function as the client sees it: virtual config space in region 7, the device's BARs in
/// regions 0–5, INTx. It outlives connections, so a client that reconnects finds the device as it
/// was left.
public final class PCIEndpoint {
    public static let configRegion: UInt32 = 7
    /// BAR0–5, ROM, config, VGA (VFIO_PCI_NUM_REGIONS).
    public static let regionCount: UInt32 = 9

    public enum AccessError: Error, Equatable {
        case noSuchRegion(UInt32)
        case outOfRange

        public var errno: UInt32 { Errno.EINVAL }
    }

    /// Device accesses served, counted per access (one element of `rep insl` is one).
    public struct Counters: Codable, Equatable, Sendable {
        public var barReads = 0
        public var barWrites = 0
        public var barBytesRead = 0
        public var barBytesWritten = 0
        public var configReads = 0
        public var configWrites = 0
    }

    public private(set) var config: PCIConfigSpace
    public let device: BusDevice
    public let interruptLine: InterruptLine
    public let intx: INTxRouter
    public private(set) var counters = Counters()
    /// Sees every BAR access, one per device access: a read after the device answered, with its
    /// value; a write before the device gets it, and returns the value the device gets instead
    /// (nil: the write is absorbed) — how an enforcing monitor denies a DMA start. The return
    /// value of a read is ignored.
    public var accessHook: ((BusAccess) -> UInt32?)?
    /// Called after the guest wrote config bytes `offset..<offset+count` (a capability's command word).
    public var configWritten: ((_ offset: Int, _ count: Int) -> Void)?
    /// Called before a function-level reset reaches the device (monitors reset their models too).
    public var resetObserver: (() -> Void)?
    /// A bus master's view of guest memory, switched by the command register's bus-master bit.
    let busMaster: BusMasterMemory?
    private let barSizes: [UInt32: UInt32]

    /// - Parameter busMaster: the memory a bus-master `device` was given (nil for a device that does no DMA).
    public init(identity: PCIIdentity, device: BusDevice, interruptLine: InterruptLine, intx: INTxRouter, busMaster: BusMasterMemory? = nil) {
        precondition(device.regionSizes[0] != nil, "the device must decode BAR0")
        self.device = device
        self.interruptLine = interruptLine
        self.intx = intx
        self.busMaster = busMaster
        barSizes = device.regionSizes
        config = PCIConfigSpace(identity: identity, bars: Dictionary(uniqueKeysWithValues: device.regionSizes.map { index, size in
            (Int(index), PCIConfigSpace.BAR(size: size, space: device.memoryRegions.contains(index) ? .memory : .io))
        }))
    }

    public func regionInfo(index: UInt32) -> RegionInfo? {
        guard index < Self.regionCount else { return nil }
        if index == Self.configRegion {
            return RegionInfo(flags: [.read, .write], index: index, size: UInt64(PCIConfigSpace.size))
        }
        guard let size = barSizes[index] else { return RegionInfo(flags: [], index: index, size: 0) }
        return RegionInfo(flags: [.read, .write], index: index, size: UInt64(size))
    }

    public func read(region: UInt32, offset: UInt64, count: Int) throws(AccessError) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count)
        try read(region: region, offset: offset, count: count, appendingTo: &out)
        return out
    }

    /// The same read, appending the `count` bytes to `out` (a reply being built): nothing else is
    /// allocated. On a throw `out` is as it was.
    public func read(region: UInt32, offset: UInt64, count: Int, appendingTo out: inout [UInt8]) throws(AccessError) {
        if region == Self.configRegion {
            guard offset < UInt64(PCIConfigSpace.size),
                  let bytes = config.read(offset: Int(offset), count: count, interruptPending: interruptLine.isAsserted)
            else { throw .outOfRange }
            counters.configReads += 1
            out += bytes
            return
        }
        for (at, width) in try split(region: region, offset: offset, count: count) {
            let value = device.read(region: region, offset: at, width: width)
            _ = accessHook?(BusAccess(direction: .read, region: region, offset: at, width: width, value: value))
            for i in 0..<width.rawValue { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))) }
            counters.barReads += 1
        }
        counters.barBytesRead += count
    }

    public func write(region: UInt32, offset: UInt64, data: [UInt8]) throws(AccessError) {
        if region == Self.configRegion {
            guard offset < UInt64(PCIConfigSpace.size), config.write(offset: Int(offset), data: data) else {
                throw .outOfRange
            }
            counters.configWrites += 1
            intx.disabled = config.interruptDisabled
            busMaster?.enabled = config.busMasterEnabled
            configWritten?(Int(offset), data.count)
            return
        }
        var index = 0
        for (at, width) in try split(region: region, offset: offset, count: data.count) {
            var value: UInt32 = 0
            for i in 0..<width.rawValue { value |= UInt32(data[index + i]) << (8 * UInt32(i)) }
            index += width.rawValue
            let access = BusAccess(direction: .write, region: region, offset: at, width: width, value: value)
            if let hook = accessHook {
                if let allowed = hook(access) { device.write(region: region, offset: at, width: width, value: allowed) }
            } else {
                device.write(region: region, offset: at, width: width, value: value)
            }
            counters.barWrites += 1
        }
        counters.barBytesWritten += data.count
    }

    /// Device-side changes to config space: adding capabilities, updating their read-only words.
    public func updateConfig(_ body: (inout PCIConfigSpace) -> Void) {
        body(&config)
    }

    /// Function-level reset: the device resets; config space keeps what the client programmed.
    public func reset() {
        resetObserver?()
        device.reset()
    }

    /// A transfer of 1, 2 or 4 bytes is one access of that width. Anything longer is a byte range:
    /// it becomes the widest naturally aligned accesses that cover it, at consecutive offsets.
    private func split(region: UInt32, offset: UInt64, count: Int) throws(AccessError) -> Pieces {
        guard let size = barSizes[region] else { throw .noSuchRegion(region) }
        guard count > 0, offset <= UInt64(size), UInt64(count) <= UInt64(size) - offset else { throw .outOfRange }
        return Pieces(at: offset, left: count, whole: AccessWidth(rawValue: count) != nil)
    }

    /// The accesses `split` makes of a transfer, made as they are iterated: every guest access goes
    /// through here, and an array of them would be one allocation each.
    struct Pieces: Sequence, IteratorProtocol {
        var at: UInt64
        var left: Int
        /// A transfer of exactly 1, 2 or 4 bytes: one access of that width, aligned or not.
        let whole: Bool

        mutating func next() -> (UInt64, AccessWidth)? {
            guard left > 0 else { return nil }
            let width: AccessWidth = if whole { AccessWidth(rawValue: left)! } else {
                left >= 4 && at % 4 == 0 ? .dword : left >= 2 && at % 2 == 0 ? .word : .byte
            }
            defer {
                at += UInt64(width.rawValue)
                left -= width.rawValue
            }
            return (at, width)
        }
    }
}
