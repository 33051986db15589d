import DeviceBus
import DP8390

/// An NE2000-compatible PCI NIC (RTL8029, 10ec:8029): a DP8390 core behind the NE2000 ASIC, whose 16 KiB
/// of buffer memory the host reaches only through the remote DMA data port. Written to work against
/// Linux's unmodified `ne2k-pci` + `8390` drivers.
///
/// BAR0 (region 0, 32 bytes of I/O): 0x00–0x0F DP8390 registers, 0x10–0x17 data port, 0x18–0x1F reset port.
/// Anything else reads as all ones, is dropped when written, and is counted; no guest input traps.
public final class NE2000: NetworkBusDevice {
    /// The MAC address, as the PROM presents it.
    public let mac: [UInt8]
    /// Registers and SRAM. Internal so the other files of the model share it; the public view is `state`.
    var s: NE2000State
    /// What the device did (frames, drops, unhandled accesses).
    public internal(set) var counters = NE2000Counters()
    /// The driver has enabled the receive interrupt (IMR.PRXE) since the last hardware reset: an
    /// interrupt-driven driver, whose wire is paced one frame per PRX (`canReceiveFrame`). Host pacing,
    /// not DP8390 state: a context switch does not carry it.
    var receiveInterruptUsed = false

    let interrupt: InterruptLine
    let transmitSink: FrameSink
    /// Sees every buffer byte a DMA moves (tests' oracle); nil in production.
    let observer: BufferAccessObserver?
    /// The 32-byte station-address PROM, derived from the MAC at creation.
    let prom: [UInt8]

    /// Creates a NIC in its power-on state.
    /// - Parameters:
    ///   - mac: 6-byte station address; shorter input is padded with zeros, longer is cut.
    ///   - interrupt: the INTx line, asserted iff ISR & IMR has a source bit set.
    ///   - transmit: receives each transmitted frame (exactly TBCR bytes, no FCS).
    ///   - observer: told of every buffer byte a DMA moves.
    public init(mac: [UInt8], interrupt: InterruptLine, transmit: @escaping FrameSink,
                observer: BufferAccessObserver? = nil) {
        let station = Array((mac + [UInt8](repeating: 0, count: 6)).prefix(6))
        self.mac = station
        self.interrupt = interrupt
        self.transmitSink = transmit
        self.observer = observer
        self.prom = StationPROM.image(mac: station)
        self.s = .powerOn
        updateInterruptLine()
    }

    /// Creates a NIC that continues from a saved state.
    /// - Throws: `NE2000StateError` when `state` breaks an invariant (see `NE2000State.validate()`).
    public convenience init(
        mac: [UInt8], interrupt: InterruptLine, transmit: @escaping FrameSink, restoring state: NE2000State
    ) throws(NE2000StateError) {
        self.init(mac: mac, interrupt: interrupt, transmit: transmit)
        try restore(state)
    }

    /// The device state, for saving and comparison.
    public var state: NE2000State { s }

    /// Replaces the device state (context switch). The interrupt line follows the restored ISR & IMR.
    /// - Throws: `NE2000StateError` and leaves the device unchanged when `state` breaks an invariant.
    public func restore(_ state: NE2000State) throws(NE2000StateError) {
        try state.validate()
        s = state
        updateInterruptLine()
    }

    // MARK: BusDevice

    /// BAR0 only: 32 bytes of I/O.
    public let regionSizes: [UInt32: UInt32] = [0: UInt32(BAR0.size)]

    /// A guest read. Registers are byte-wide; the data port moves 1, 2 or 4 bytes; the reset port resets.
    public func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32 {
        switch decode(region: region, offset: offset, width: width) {
        case .register(let index):
            return UInt32(readRegister(index))
        case .dataPort:
            return readDataPort(width: width)
        case .resetPort:
            hardwareReset()
            return 0
        case .ignored:
            counters.unhandledAccesses &+= 1
            return width.mask
        }
    }

    /// A guest write. Writes the model does not decode are dropped and counted.
    public func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) {
        switch decode(region: region, offset: offset, width: width) {
        case .register(let index):
            writeRegister(index, UInt8(truncatingIfNeeded: value))
        case .dataPort:
            writeDataPort(width: width, value: value)
        case .resetPort:
            // The write ends the reset pulse the read began; nothing to do.
            break
        case .ignored:
            counters.unhandledAccesses &+= 1
        }
    }

    /// PCI function reset: the same hardware reset as a read of the reset port.
    public func reset() {
        hardwareReset()
    }

    private func decode(region: UInt32, offset: UInt64, width: AccessWidth) -> BAR0.Block {
        region == 0 ? BAR0.decode(offset: offset, width: width) : .ignored
    }

    /// What the reset port and a PCI function reset do: the DP8390 hardware reset, which also ends a
    /// remote DMA. The PROM is read-only and derived from the MAC, so it "reloads" by construction; SRAM
    /// keeps its contents.
    private func hardwareReset() {
        let sram = s.sram
        s = .powerOn
        s.sram = sram
        receiveInterruptUsed = false
        updateInterruptLine()
    }

    // MARK: Interrupts

    /// Sets ISR bits (an event happened) and updates the line.
    func raise(_ bits: UInt8) {
        s.interruptStatus |= bits
        updateInterruptLine()
    }

    /// The one place the interrupt line is computed: asserted iff an unmasked source bit is set.
    /// Called after every change to ISR or IMR.
    func updateInterruptLine() {
        interrupt.set(s.interruptStatus & s.interruptMask & ISR.sources != 0)
    }
}
