/// The RTL8139's registers (what a context switch would carry; the EEPROM is fixed by the MAC).
public struct RTL8139State: Sendable, Equatable {
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
}
