import CVPIOAgentShim
import DeviceBus
import NE2000Model
import RTL8139
import RTL8139Model

/// Which NIC the agent shadows, and so which driver's sites and which model.
public enum AgentDevice: Sendable, CustomStringConvertible {
    /// The RTL8029 (NE2000) under ne2k-pci: port instructions in 8390 and ne2k-pci.
    case ne2000
    /// The RTL8139 under 8139too with `use_io=1`: its calls to the kernel's iomap accessors.
    case rtl8139

    public var pciDevice: UInt16 { self == .ne2000 ? 0x8029 : 0x8139 }
    /// The kernel's module names (as /sys/module spells them) and their files' names.
    public var modules: [String] { self == .ne2000 ? ["8390", "ne2k_pci"] : ["8139too"] }
    public var moduleFiles: [String] { self == .ne2000 ? ["8390", "ne2k-pci"] : ["8139too"] }
    /// Ports of BAR0 the counter keeps apart.
    public var ports: Int { self == .ne2000 ? 32 : RTL8139Register.size }
    /// The BPF program's `device` (VPIO_DEVICE_*).
    public var bpfCode: UInt8 { self == .ne2000 ? UInt8(VPIO_DEVICE_NE2000) : UInt8(VPIO_DEVICE_RTL8139) }
    public var description: String { self == .ne2000 ? "ne2000" : "rtl8139" }
}

/// Consumes the BPF events: counts device accesses per BAR0 offset and direction and drives the
/// device's full model with every access (one element of a rep string op is one access), whose DMA
/// starts are counted beside the BPF program's intents — two implementations of one rule, compared.
///
/// NE2000: pairs each `in` with the value its post site saw and runs the full NE2000 model
/// (Sources/NE2000Model). The agent does not see the interrupt line, so the model's `interruptPending`
/// stays false: `reusable` here means no remote DMA and no transmit in flight.
///
/// RTL8139: runs the host's own model of the steering registers (vmm-model's `RTL8139ModeMonitor`, which
/// takes a transmit it let start as handed back) with a check that permits everything: its checks are
/// the transmits and ring setups the host will match intents against. Reads carry no value (the program
/// takes none: nothing the DMA rule needs is read). Never `reusable`: this device is not shared.
public final class EventCounter {
    public let device: AgentDevice
    public private(set) var model = FullModel()
    private var steering = RTL8139ModeMonitor(mode: .vmmModel)
    private static let everything = RTL8139DMACheck(allowed: [0..<UInt64.max])
    /// What the monitor is handed as the device: vmm-model judges from its own model, never from this.
    private static let unread = RTL8139State()
    /// DMA starts the full model decided on (its DMADecision count; the RTL8139's transmits and ring setups).
    public private(set) var modelDMAStarts: UInt64 = 0
    public var reusable: Bool { device == .ne2000 && model.reusable }

    public let bar0Base: UInt16
    public private(set) var events: UInt64 = 0
    public private(set) var accesses: UInt64 = 0
    /// reads[offset], writes[offset] for the device's BAR0 ports; accesses elsewhere in `otherPorts`.
    public private(set) var reads: [UInt64]
    public private(set) var writes: [UInt64]
    public private(set) var otherPorts: UInt64 = 0
    public private(set) var dmaStarts: UInt64 = 0
    public private(set) var readValuesSeen: UInt64 = 0
    /// Access index gaps: an event whose access_index is not where the previous one ended (events lost).
    public private(set) var gaps: UInt64 = 0
    private var nextIndex: UInt64?

    public init(bar0Base: UInt16, device: AgentDevice = .ne2000) {
        self.bar0Base = bar0Base
        self.device = device
        reads = [UInt64](repeating: 0, count: device.ports)
        writes = [UInt64](repeating: 0, count: device.ports)
    }

    public func consume(_ event: vpio_event) {
        events += 1
        if event.kind == UInt8(VPIO_SITE_POST) {
            readValuesSeen += 1
            return
        }
        if let expected = nextIndex, expected != event.access_index { gaps += 1 }
        nextIndex = event.access_index &+ event.count
        accesses &+= event.count
        // An RTL8139 access to no port of BAR0 comes as port 0 (the BPF program's `foreign`).
        let offset = event.port == 0 ? -1 : Int(event.port) - Int(bar0Base)
        let kind = Int32(event.kind)
        let isWrite = kind == VPIO_SITE_OUT || kind == VPIO_SITE_OUTS || kind == VPIO_SITE_CALL_WRITE
        guard offset >= 0 && offset < device.ports else {
            otherPorts &+= event.count
            return
        }
        if isWrite { writes[offset] &+= event.count } else { reads[offset] &+= event.count }
        if device == .rtl8139 {
            if isWrite { applySteering(offset: offset, width: Int(event.width), value: event.value) }
            return
        }
        let width = AccessWidth(rawValue: Int(event.width)) ?? .byte
        // Reads are applied when they are about to happen (their value only matters for the data
        // port's progress and the reset port, neither of which looks at it).
        let access = PortAccess(isWrite ? .write : .read, offset: UInt8(offset), width: width,
                                value: isWrite ? UInt32(truncatingIfNeeded: event.value) & width.mask : 0)
        for _ in 0..<event.count {
            modelDMAStarts += UInt64(model.apply(access).count)
        }
        if offset == 0, event.kind == UInt8(VPIO_SITE_OUT), event.width == 1 {
            let cr = UInt8(truncatingIfNeeded: event.value)
            let rd = (cr >> 3) & 7
            if rd == 1 || rd == 2 { dmaStarts += 1 }
            if cr & 0x07 == 0x06 { dmaStarts += 1 }
        }
    }

    /// An RTL8139 write through the host's steering model: the transmits it starts and the ring it sets.
    private func applySteering(offset: Int, width: Int, value: UInt64) {
        guard let width = AccessWidth(rawValue: width) else { return }
        let access = BusAccess(direction: .write, region: 0, offset: UInt64(offset), width: width,
                               value: UInt32(truncatingIfNeeded: value) & width.mask)
        if let examination = steering.observe(access, device: Self.unread, check: Self.everything) {
            modelDMAStarts += UInt64(examination.checks)
            dmaStarts += UInt64(examination.transmits.count)
        }
        steering.settle(access, delivered: true, aborted: [])
    }

    /// `r00:N,w00:N,…` for every offset with accesses (hex offsets), then `other:N` if any.
    public var byPort: String {
        var parts: [String] = []
        for offset in 0..<device.ports {
            let hex = offset < 16 ? "0" + String(offset, radix: 16) : String(offset, radix: 16)
            if reads[offset] > 0 { parts.append("r\(hex):\(reads[offset])") }
            if writes[offset] > 0 { parts.append("w\(hex):\(writes[offset])") }
        }
        if otherPorts > 0 { parts.append("other:\(otherPorts)") }
        return parts.isEmpty ? "none" : parts.joined(separator: ",")
    }

    public var totalReads: UInt64 { reads.reduce(0, &+) }
    public var totalWrites: UInt64 { writes.reduce(0, &+) }
}
