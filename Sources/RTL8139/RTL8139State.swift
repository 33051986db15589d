import DeviceBus

/// The RTL8139's registers (what a context switch would carry; the EEPROM is fixed by the MAC).
public struct RTL8139State: Sendable, Equatable, Codable {
    public var idr: [UInt8] = [0, 0, 0, 0, 0, 0]
    public var mar: [UInt8] = [UInt8](repeating: 0, count: 8)
    /// OWN set: no transmit pending.
    public var tsd: [UInt32] = [UInt32](repeating: RTL8139TransmitStatus.own, count: 4)
    public var tsad: [UInt32] = [0, 0, 0, 0]
    public var rbstart: UInt32 = 0
    /// RE and TE as last written.
    public var command: UInt8 = 0
    /// CAPR + 16 is where the driver reads next; 0xFFF0 after reset: the ring is empty.
    public var capr: UInt16 = 0xFFF0
    /// Where the next packet goes, as an offset into the ring.
    public var cbr: UInt16 = 0
    public var imr: UInt16 = 0
    public var isr: UInt16 = 0
    /// TCR's writable bits (the version bits are the chip's).
    public var tcr: UInt32 = 0
    public var rcr: UInt32 = 0
    public var missedPackets: UInt32 = 0
    /// 9346CR as written (its DO bit comes from the EEPROM).
    public var cfg9346: UInt8 = 0
    public var config: [UInt64: UInt8] = [RTL8139Register.config0: 0, RTL8139Register.config1: 0,
                                          RTL8139Register.config3: 0, RTL8139Register.config4: 0,
                                          RTL8139Register.hltclk: 0]
    /// BMCR: autonegotiation on, 100 Mbit/s, full duplex.
    public var bmcr: UInt16 = 0x3100

    public init() {}

    public init(mac: [UInt8]) { idr = mac }

    /// The receive ring's length (RCR.RBLEN).
    public var ringLength: Int { RTL8139ReceiveConfig.ringLength(rcr) }
    /// Bytes the driver has not read yet. The driver's read pointer (CAPR + 16) is a 16-bit count it
    /// never reduces; the ring's length divides 65536, so reducing both modulo the length agrees.
    public var ringUsed: Int { Int(cbr &- (capr &+ 16)) % ringLength }
    public var receiveEnabled: Bool { command & RTL8139Command.receiveEnable != 0 }
    public var transmitEnabled: Bool { command & RTL8139Command.transmitEnable != 0 }

    /// A guest byte landing in a DMA-steering register (TSD0–3, TSAD0–3, RBSTART, RCR): the one
    /// definition the device and the host's DMA check (RTL8139Model) both apply. False for any other offset.
    public mutating func storeSteering(_ byte: UInt8, at offset: UInt64) -> Bool {
        let R = RTL8139Register.self
        func merged(_ register: UInt32, _ base: UInt64) -> UInt32 { Self.merging(register, byte: byte, at: Int(offset - base)) }
        switch offset {
        case R.tsd..<R.tsad:
            let index = Int(offset - R.tsd) / 4
            tsd[index] = merged(tsd[index], R.tsd(index))
        case R.tsad..<R.tsad + 16:
            let index = Int(offset - R.tsad) / 4
            tsad[index] = merged(tsad[index], R.tsad(index))
        case R.rbstart..<R.rbstart + 4: rbstart = merged(rbstart, R.rbstart)
        case R.rcr..<R.rcr + 4: rcr = merged(rcr, R.rcr)
        default: return false
        }
        return true
    }

    /// A guest write of `width` bytes of `value` at `offset`, as it lands in the steering registers and
    /// CR (`storeSteering`, `applyCommand`); other offsets are left alone. How the host's DMA check and the
    /// in-VMM model see a write.
    public mutating func applySteeringWrite(offset: UInt64, width: AccessWidth, value: UInt32) {
        for i in 0..<width.rawValue {
            let at = offset + UInt64(i), byte = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))
            if !storeSteering(byte, at: at), at == RTL8139Register.cr { applyCommand(byte) }
        }
    }

    /// `register` with its byte `index` (0 = least significant) replaced: how every register takes a
    /// write of part of it.
    static func merging(_ register: UInt32, byte: UInt8, at index: Int) -> UInt32 {
        let shift = UInt32(8 * index)
        return register & ~(0xFF << shift) | UInt32(byte) << shift
    }

    /// A CR write's effect on the registers (the device then starts what TE lets go): RST puts the ring,
    /// descriptors, interrupts and receive configuration to their reset values; RE and TE as written;
    /// enabling the receiver starts the ring over (CBR 0, empty), as the driver's `cur_rx = 0` expects.
    public mutating func applyCommand(_ value: UInt8) {
        if value & RTL8139Command.reset != 0 {
            command = 0; cbr = 0; capr = 0xFFF0; imr = 0; isr = 0; rcr = 0
            tsd = [UInt32](repeating: RTL8139TransmitStatus.own, count: 4)
        }
        let wasReceiving = receiveEnabled
        command = value & (RTL8139Command.receiveEnable | RTL8139Command.transmitEnable)
        if receiveEnabled, !wasReceiving { cbr = 0; capr = 0xFFF0 }
    }
}
