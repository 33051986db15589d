import DeviceBus

/// A Realtek RTL8139C (PCI 10ec:8139, revision 0x10, so Linux's `8139too` drives it and `8139cp` does
/// not) as a pure model behind `BusDevice`: a bus master that reads transmit buffers and writes the
/// receive ring in guest memory on its own, at the guest-physical addresses the driver wrote to TSAD0–3
/// and RBSTART. Every such access goes through `GuestMemory`, range-checked as a whole: a descriptor
/// or ring outside what is mapped is refused (the transmit aborts with TER, the frame is dropped with
/// RER) and nothing outside guest memory is ever read or written.
///
/// Registers decode at any width and byte offset (the driver reads IDR bytewise and TSD as dwords);
/// offsets the model does not implement read as zero and drop writes, counted.
public final class RTL8139: NetworkBusDevice {
    /// The MAC address the EEPROM holds.
    public let mac: [UInt8]
    public internal(set) var counters = RTL8139Counters()
    var s = RTL8139State()
    var eeprom: SerialEEPROM
    let memory: WritableGuestMemory
    let interrupt: InterruptLine
    let transmitSink: FrameSink

    /// Creates a NIC in its power-on state.
    /// - Parameters:
    ///   - mac: 6-byte station address (padded or cut to 6).
    ///   - memory: guest memory as the device's DMA reaches it.
    ///   - interrupt: the INTx line, asserted iff ISR & IMR is not zero.
    ///   - transmit: receives each transmitted frame (TSD's size in bytes, no FCS).
    public init(mac: [UInt8], memory: WritableGuestMemory, interrupt: InterruptLine, transmit: @escaping FrameSink) {
        let station = Array((mac + [UInt8](repeating: 0, count: 6)).prefix(6))
        self.mac = station
        self.memory = memory
        self.interrupt = interrupt
        self.transmitSink = transmit
        eeprom = .rtl8139(mac: station)
        s = RTL8139State(mac: station)
        updateInterruptLine()
    }

    /// The registers, for comparison and saving.
    public var state: RTL8139State { s }

    // MARK: BusDevice

    /// The same registers twice, as the chip has them: BAR0 in I/O space (8139too with `use_io=1`) and
    /// BAR1 in memory space (its default).
    public let regionSizes: [UInt32: UInt32] = [0: UInt32(RTL8139Register.size), 1: UInt32(RTL8139Register.size)]
    public let memoryRegions: Set<UInt32> = [1]

    public func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32 {
        guard region <= 1, offset + UInt64(width.rawValue) <= UInt64(RTL8139Register.size) else {
            counters.unhandledAccesses += 1
            return width.mask
        }
        var value: UInt32 = 0
        for i in 0..<width.rawValue { value |= UInt32(readByte(Int(offset) + i)) << (8 * i) }
        return value
    }

    public func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) {
        guard region <= 1, offset + UInt64(width.rawValue) <= UInt64(RTL8139Register.size) else {
            counters.unhandledAccesses += 1
            return
        }
        let bytes = (0..<width.rawValue).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
        write(at: Int(offset), bytes: bytes)
        updateInterruptLine()
    }

    public func reset() {
        s = RTL8139State(mac: mac)
        eeprom = .rtl8139(mac: mac)
        updateInterruptLine()
    }

    func updateInterruptLine() { interrupt.set(s.isr & s.imr != 0) }
}

/// What the device did.
public struct RTL8139Counters: Sendable, Equatable, Codable {
    public var framesTransmitted = 0
    public var framesReceived = 0
    /// Frames from the wire not stored: receiver off, filtered, or no room.
    public var framesDropped = 0
    /// Transmits the device refused because their buffer is not in guest memory (a host's aborts are not counted here).
    public var transmitsRefused = 0
    /// Received frames refused because the ring's range is not in guest memory.
    public var receivesRefused = 0
    public var unhandledAccesses = 0
}
