import DeviceBus
import DP8390

/// The DP8390 registers a DMA or a transmit is programmed with that no page reads back: the host knows
/// them only from a model that trapped their writes (emulated, vmm-model) or, for a guest whose writes
/// it does not trap, not at all — see host-monitor/SHARING.md for why a switch never needs them then.
public struct WriteOnlyRegisters: Sendable, Hashable {
    public var rsar: UInt16
    public var rbcr: UInt16
    public var tbcr: UInt16

    public init(rsar: UInt16 = 0, rbcr: UInt16 = 0, tbcr: UInt16 = 0) {
        self.rsar = rsar
        self.rbcr = rbcr
        self.tbcr = tbcr
    }
}

/// One guest's NE2000 as it left it: every register that can be read back (and so written back), the
/// write-only ones from the host's shadow, and the whole buffer memory the guest can reach.
public struct DeviceContext: Sendable, Hashable {
    /// CR's page and run state (the remote and transmit bits are not kept: nothing is in flight at a
    /// switch, and a restored CR carries RD = abort).
    public var command: UInt8
    public var boundary: UInt8
    /// ISR as it was; only the bits that raise no interrupt can be non-zero at a switch, and no register
    /// write sets ISR bits, so they are not restored (SHARING.md).
    public var interruptStatus: UInt8
    public var physicalAddress: [UInt8]
    public var currentPage: UInt8
    public var multicast: [UInt8]
    public var pageStart: UInt8
    public var pageStop: UInt8
    public var transmitPage: UInt8
    public var receiveConfiguration: UInt8
    public var transmitConfiguration: UInt8
    public var dataConfiguration: UInt8
    public var interruptMask: UInt8
    public var writeOnly: WriteOnlyRegisters
    /// Buffer memory over `BufferLayout.sram`.
    public var memory: [UInt8]

    /// A guest that never ran: the device as a reset leaves it, its memory zero (nothing of anyone's).
    public static func reset(layout: BufferLayout) -> DeviceContext {
        DeviceContext(command: CR.stop, boundary: 0,
                      interruptStatus: ISR.reset, physicalAddress: [UInt8](repeating: 0, count: 6), currentPage: 0,
                      multicast: [UInt8](repeating: 0, count: 8), pageStart: 0, pageStop: 0, transmitPage: 0,
                      receiveConfiguration: 0, transmitConfiguration: 0, dataConfiguration: 0, interruptMask: 0,
                      writeOnly: WriteOnlyRegisters(), memory: [UInt8](repeating: 0, count: layout.sram.count))
    }
}

/// The buffer memory a guest can reach by remote DMA: what a switch must save and restore, all of it,
/// so nothing of one guest's frames is left for the next.
public struct BufferLayout: Sendable, Hashable {
    public var sram: Range<Int>

    public init(sram: Range<Int>) {
        precondition(sram.lowerBound % BufferMap.pageSize == 0 && sram.count % 4 == 0 && sram.upperBound <= 0x10000)
        self.sram = sram
    }

    /// Our NE2000 and the RTL8029: 16 KiB, pages 0x40–0x7F.
    public static let rtl8029 = BufferLayout(sram: BufferMap.sram)
    /// QEMU's ne2k_pci decodes 32 KiB, pages 0x40–0xBF, all reachable by a guest's remote DMA.
    public static let qemuNE2000 = BufferLayout(sram: 0x4000..<0xC000)
}

extension DeviceContext: CustomStringConvertible {
    /// The registers in hex and the memory's size: a context in a log line.
    public var description: String {
        let hex = { (v: UInt8) in String(v, radix: 16) }
        return "CR=\(hex(command)) BNRY=\(hex(boundary)) ISR=\(hex(interruptStatus)) PAR=\(physicalAddress.map(hex).joined(separator: ":")) "
            + "CURR=\(hex(currentPage)) PSTART=\(hex(pageStart)) PSTOP=\(hex(pageStop)) TPSR=\(hex(transmitPage)) RCR=\(hex(receiveConfiguration)) "
            + "TCR=\(hex(transmitConfiguration)) DCR=\(hex(dataConfiguration)) IMR=\(hex(interruptMask)) \(memory.count) bytes"
    }

    /// What differs from `other`, field by field; memory as the number of differing bytes and the first.
    public func differences(from other: DeviceContext) -> [String] {
        var found: [String] = []
        let fields: [(String, AnyHashable, AnyHashable)] = [
            ("CR", command, other.command), ("BNRY", boundary, other.boundary), ("ISR", interruptStatus, other.interruptStatus),
            ("PAR", physicalAddress, other.physicalAddress), ("CURR", currentPage, other.currentPage), ("MAR", multicast, other.multicast),
            ("PSTART", pageStart, other.pageStart), ("PSTOP", pageStop, other.pageStop), ("TPSR", transmitPage, other.transmitPage),
            ("RCR", receiveConfiguration, other.receiveConfiguration), ("TCR", transmitConfiguration, other.transmitConfiguration),
            ("DCR", dataConfiguration, other.dataConfiguration), ("IMR", interruptMask, other.interruptMask),
            ("write-only", writeOnly, other.writeOnly),
        ]
        for (name, mine, theirs) in fields where mine != theirs { found.append("\(name) \(mine) against \(theirs)") }
        let differing = zip(memory, other.memory).enumerated().filter { $0.element.0 != $0.element.1 }
        if memory.count != other.memory.count || !differing.isEmpty {
            found.append("memory: \(differing.count) bytes differ, first at +0x\(String(differing.first?.offset ?? 0, radix: 16))"
                         + (memory.count != other.memory.count ? ", \(memory.count) against \(other.memory.count) bytes" : ""))
        }
        return found
    }
}
