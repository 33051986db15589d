import CVPIOAgentShim
import DeviceBus
import NE2000Model

/// Consumes the BPF events: counts device accesses per BAR0 offset and direction, pairs each `in`
/// with the value its post site saw, decodes DMA starts the same way the BPF program does, and drives
/// the full NE2000 model (Sources/NE2000Model) with every access: one element of a rep string op is one
/// access. The agent does not see the interrupt line, so the model's `interruptPending` stays false:
/// `reusable` here means no remote DMA and no transmit in flight.
public final class EventCounter {
    public private(set) var model = FullModel()
    /// DMA starts the full model decided on (its DMADecision count).
    public private(set) var modelDMAStarts: UInt64 = 0
    public var reusable: Bool { model.reusable }

    public let bar0Base: UInt16
    public private(set) var events: UInt64 = 0
    public private(set) var accesses: UInt64 = 0
    /// reads[offset], writes[offset] for offsets 0..<32 of BAR0; accesses elsewhere in `otherPorts`.
    public private(set) var reads = [UInt64](repeating: 0, count: 32)
    public private(set) var writes = [UInt64](repeating: 0, count: 32)
    public private(set) var otherPorts: UInt64 = 0
    public private(set) var dmaStarts: UInt64 = 0
    public private(set) var readValuesSeen: UInt64 = 0
    /// Access index gaps: an event whose access_index is not where the previous one ended (events lost).
    public private(set) var gaps: UInt64 = 0
    private var nextIndex: UInt64?

    public init(bar0Base: UInt16) { self.bar0Base = bar0Base }

    public func consume(_ event: vpio_event) {
        events += 1
        if event.kind == UInt8(VPIO_SITE_POST) {
            readValuesSeen += 1
            return
        }
        if let expected = nextIndex, expected != event.access_index { gaps += 1 }
        nextIndex = event.access_index &+ event.count
        accesses &+= event.count
        let offset = Int(event.port) - Int(bar0Base)
        let isWrite = event.kind == UInt8(VPIO_SITE_OUT) || event.kind == UInt8(VPIO_SITE_OUTS)
        if offset >= 0 && offset < 32 {
            if isWrite { writes[offset] &+= event.count } else { reads[offset] &+= event.count }
        } else {
            otherPorts &+= event.count
        }
        if offset >= 0 && offset < 32 {
            let width = AccessWidth(rawValue: Int(event.width)) ?? .byte
            // Reads are applied when they are about to happen (their value only matters for the data
            // port's progress and the reset port, neither of which looks at it).
            let access = PortAccess(isWrite ? .write : .read, offset: UInt8(offset), width: width,
                                    value: isWrite ? UInt32(truncatingIfNeeded: event.value) & width.mask : 0)
            for _ in 0..<event.count {
                modelDMAStarts += UInt64(model.apply(access).count)
            }
        }
        if offset == 0, event.kind == UInt8(VPIO_SITE_OUT), event.width == 1 {
            let cr = UInt8(truncatingIfNeeded: event.value)
            let rd = (cr >> 3) & 7
            if rd == 1 || rd == 2 { dmaStarts += 1 }
            if cr & 0x07 == 0x06 { dmaStarts += 1 }
        }
    }

    /// `r00:N,w00:N,…` for every offset with accesses (hex offsets), then `other:N` if any.
    public var byPort: String {
        var parts: [String] = []
        for offset in 0..<32 {
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
