/// The 93C46 serial EEPROM (64 16-bit words) behind 9346CR, as drivers bit-bang it in programming
/// mode: with CS high, each rising edge of SK shifts DI in; a start bit, the READ opcode (10) and six
/// address bits make it shift the addressed word out on DO, MSB first, one bit per later rising edge,
/// continuing into the next word. Leading zeros before the start bit are ignored. Other opcodes
/// (write, erase, enable) are taken in and ignored: the contents never change.
public struct SerialEEPROM: Sendable, Equatable {
    public let words: [UInt16]
    private var shiftIn: UInt32 = 0
    private var bitsIn = 0
    private var started = false
    /// The word and bit DO shows at the next rising edge, once a READ was taken in.
    private struct Position: Sendable, Equatable { var address: Int; var bit: Int }
    private var reading: Position?
    private var clock = false
    private var selected = false
    /// The level on DO.
    public private(set) var dataOut = false

    public init(words: [UInt16]) { self.words = Array((words + [UInt16](repeating: 0xFFFF, count: 64)).prefix(64)) }

    /// The contents 8139too expects: the 0x8129 signature, the PCI IDs, the MAC in words 7–9.
    public static func rtl8139(mac: [UInt8]) -> SerialEEPROM {
        var words = [UInt16](repeating: 0, count: 64)
        words[0] = 0x8129
        words[1] = 0x10EC
        words[2] = 0x8139
        for i in 0..<3 { words[7 + i] = UInt16(mac[2 * i]) | UInt16(mac[2 * i + 1]) << 8 }
        return SerialEEPROM(words: words)
    }

    /// The chip-select, clock and data-in levels the driver wrote.
    public mutating func drive(select: Bool, clock newClock: Bool, dataIn: Bool) {
        defer { clock = newClock }
        guard select else {
            selected = false
            resetCommand()
            return
        }
        if !selected { selected = true; resetCommand() }
        guard newClock, !clock else { return }
        if let position = reading {
            shiftOut(position)
        } else {
            shiftIn(dataIn)
        }
    }

    private mutating func resetCommand() {
        shiftIn = 0; bitsIn = 0; started = false; reading = nil; dataOut = false
    }

    private mutating func shiftIn(_ bit: Bool) {
        guard started else { started = bit; return }
        shiftIn = shiftIn << 1 | (bit ? 1 : 0)
        bitsIn += 1
        guard bitsIn == 8 else { return }
        // Two opcode bits, six address bits; only READ (10) answers. DO shows the dummy 0 bit.
        if shiftIn >> 6 == 0b10 { reading = Position(address: Int(shiftIn & 0x3F), bit: 15) }
        dataOut = false
    }

    private mutating func shiftOut(_ position: Position) {
        dataOut = words[position.address] >> UInt16(position.bit) & 1 == 1
        reading = position.bit == 0 ? Position(address: (position.address + 1) & 0x3F, bit: 15)
                                    : Position(address: position.address, bit: position.bit - 1)
    }
}
