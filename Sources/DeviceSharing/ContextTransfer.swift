import DeviceBus
import DP8390

/// Saves and restores a guest's `DeviceContext` through the register interface only — page switches,
/// register reads and writes, and remote DMA through the data port for buffer memory — so it works on
/// any NE2000 behind `BusDevice`, ours, QEMU's or real hardware. It owns the device while it runs: it is
/// called only at a switch, when no guest's access is in progress. Every access it makes is counted.
public struct ContextTransfer {
    public let device: BusDevice
    public let layout: BufferLayout
    /// Device accesses made so far.
    public private(set) var accesses = 0

    public init(device: BusDevice, layout: BufferLayout) {
        self.device = device
        self.layout = layout
    }

    /// The context as the device holds it now; `writeOnly` is the host's shadow. Leaves the device's
    /// remote DMA registers, ring bounds and DCR as its copy needed them: a restore follows.
    public mutating func save(writeOnly: WriteOnlyRegisters) -> DeviceContext {
        let command = read(CR.offset)
        write(CR.offset, command & (CR.start | CR.stop) | noDMA(page: 0))
        let boundary = read(Page0Read.bnry.rawValue), interruptStatus = read(Page0Read.isr.rawValue)
        write(CR.offset, command & (CR.start | CR.stop) | noDMA(page: 1))
        let physical = (1...6).map { read(UInt8($0)) }, current = read(Page1.curr.rawValue)
        let multicast = (0x08...0x0F).map { read(UInt8($0)) }
        write(CR.offset, command & (CR.start | CR.stop) | noDMA(page: 2))
        var context = DeviceContext(
            command: command & (CR.pageMask | CR.start | CR.stop), boundary: boundary, interruptStatus: interruptStatus, physicalAddress: physical,
            currentPage: current, multicast: multicast, pageStart: read(Page2Read.pstart.rawValue),
            pageStop: read(Page2Read.pstop.rawValue), transmitPage: read(Page2Read.tpsr.rawValue),
            receiveConfiguration: read(Page2Read.rcr.rawValue), transmitConfiguration: read(Page2Read.tcr.rawValue),
            dataConfiguration: read(Page2Read.dcr.rawValue), interruptMask: read(Page2Read.imr.rawValue),
            writeOnly: writeOnly, memory: [])
        write(CR.offset, command & (CR.start | CR.stop) | noDMA(page: 0))
        context.memory = copyOut()
        return context
    }

    /// Puts `context` on the device: stopped first (nothing is received meanwhile), buffer memory,
    /// every register, ISR cleared, then CR with the context's page and run state.
    public mutating func restore(_ context: DeviceContext) {
        write(CR.offset, CR.stop | noDMA(page: 0))
        copyIn(context.memory)
        let page0: [(Page0Write, UInt8)] = [
            (.pstart, context.pageStart), (.pstop, context.pageStop), (.bnry, context.boundary), (.tpsr, context.transmitPage),
            (.tbcr0, low(context.writeOnly.tbcr)), (.tbcr1, high(context.writeOnly.tbcr)),
            (.rsar0, low(context.writeOnly.rsar)), (.rsar1, high(context.writeOnly.rsar)),
            (.rbcr0, low(context.writeOnly.rbcr)), (.rbcr1, high(context.writeOnly.rbcr)),
            (.rcr, context.receiveConfiguration), (.tcr, context.transmitConfiguration), (.dcr, context.dataConfiguration),
            (.isr, 0xFF), (.imr, context.interruptMask),
        ]
        for (register, value) in page0 { write(register.rawValue, value) }
        write(CR.offset, CR.stop | noDMA(page: 1))
        for (index, byte) in context.physicalAddress.enumerated() { write(UInt8(1 + index), byte) }
        write(Page1.curr.rawValue, context.currentPage)
        for (index, byte) in context.multicast.enumerated() { write(UInt8(0x08 + index), byte) }
        write(CR.offset, context.command & ~(CR.transmit | CR.remoteMask) | RemoteCommand.abort.rawValue << CR.remoteShift)
    }

    /// Buffer memory by remote read, 32 bits per data-port access, the ring widened to all of it so
    /// the copy does not wrap at the guest's PSTOP.
    private mutating func copyOut() -> [UInt8] {
        startRemote(.read)
        var memory: [UInt8] = []
        memory.reserveCapacity(layout.sram.count)
        for _ in 0..<layout.sram.count / 4 {
            let word = device.read(region: 0, offset: BAR0.dataPort.lowerBound, width: .dword)
            accesses += 1
            for i in 0..<4 { memory.append(UInt8(truncatingIfNeeded: word >> (8 * UInt32(i)))) }
        }
        write(Page0Write.isr.rawValue, ISR.remoteDMAComplete)
        return memory
    }

    /// The reverse, by remote write.
    private mutating func copyIn(_ memory: [UInt8]) {
        startRemote(.write)
        for at in stride(from: 0, to: memory.count, by: 4) {
            let word = (0..<4).reduce(UInt32(0)) { $0 | UInt32(memory[at + $1]) << (8 * UInt32($1)) }
            device.write(region: 0, offset: BAR0.dataPort.lowerBound, width: .dword, value: word)
            accesses += 1
        }
        write(Page0Write.isr.rawValue, ISR.remoteDMAComplete)
    }

    /// Word-wide transfers, the ring over all of buffer memory, RSAR and RBCR over it, then the command
    /// (page 0 is selected; the run state is left as it is).
    private mutating func startRemote(_ command: RemoteCommand) {
        let run = read(CR.offset) & (CR.start | CR.stop)
        write(Page0Write.dcr.rawValue, DCR.wordTransfer | 0x48)
        write(Page0Write.pstart.rawValue, UInt8(layout.sram.lowerBound >> 8))
        write(Page0Write.pstop.rawValue, UInt8(truncatingIfNeeded: layout.sram.upperBound >> 8))
        let start = UInt16(layout.sram.lowerBound), count = UInt16(truncatingIfNeeded: layout.sram.count)
        for (register, value) in [(Page0Write.rsar0, low(start)), (.rsar1, high(start)), (.rbcr0, low(count)), (.rbcr1, high(count))] {
            write(register.rawValue, value)
        }
        write(CR.offset, run | command.rawValue << CR.remoteShift)
    }

    private func noDMA(page: UInt8) -> UInt8 { RemoteCommand.abort.rawValue << CR.remoteShift | page << CR.pageShift }
    private func low(_ value: UInt16) -> UInt8 { UInt8(truncatingIfNeeded: value) }
    private func high(_ value: UInt16) -> UInt8 { UInt8(truncatingIfNeeded: value >> 8) }

    private mutating func read(_ offset: UInt8) -> UInt8 {
        accesses += 1
        return UInt8(truncatingIfNeeded: device.read(region: 0, offset: UInt64(offset), width: .byte))
    }

    private mutating func write(_ offset: UInt8, _ value: UInt8) {
        accesses += 1
        device.write(region: 0, offset: UInt64(offset), width: .byte, value: UInt32(value))
    }
}
