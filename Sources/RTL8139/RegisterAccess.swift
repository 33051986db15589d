extension RTL8139 {
    /// RTL8139C's TCR version bits (HWVERID 30–26 = 11101, 23–22 = 00), which 8139too identifies.
    static let hardwareVersion: UInt32 = 0x7400_0000
    /// BMSR: 100BASE-TX and 10BASE-T, full and half duplex, autonegotiation able and complete, link up.
    static let basicModeStatus: UInt16 = 0x782D
    static let partnerAbility: UInt16 = 0x45E1

    /// The byte at `offset` (< 256) as a read sees it.
    func readByte(_ offset: Int) -> UInt8 {
        let o = UInt64(offset), R = RTL8139Register.self
        switch o {
        case R.idr..<R.idr + 6: return s.idr[offset]
        case R.mar..<R.mar + 8: return s.mar[offset - Int(R.mar)]
        case R.tsd..<R.tsd + 16: return byte(s.tsd[(offset - Int(R.tsd)) / 4], (offset - Int(R.tsd)) % 4)
        case R.tsad..<R.tsad + 16: return byte(s.tsad[(offset - Int(R.tsad)) / 4], (offset - Int(R.tsad)) % 4)
        case R.rbstart..<R.rbstart + 4: return byte(s.rbstart, offset - Int(R.rbstart))
        case R.cr: return s.command & (RTL8139Command.receiveEnable | RTL8139Command.transmitEnable)
            | (s.ringUsed == 0 ? RTL8139Command.bufferEmpty : 0)
        case R.capr..<R.capr + 2: return byte(UInt32(s.capr), offset - Int(R.capr))
        case R.cbr..<R.cbr + 2: return byte(UInt32(s.cbr), offset - Int(R.cbr))
        case R.imr..<R.imr + 2: return byte(UInt32(s.imr), offset - Int(R.imr))
        case R.isr..<R.isr + 2: return byte(UInt32(s.isr), offset - Int(R.isr))
        case R.tcr..<R.tcr + 4: return byte(s.tcr | Self.hardwareVersion, offset - Int(R.tcr))
        case R.rcr..<R.rcr + 4: return byte(s.rcr, offset - Int(R.rcr))
        case R.mpc..<R.mpc + 4: return byte(s.missedPackets, offset - Int(R.mpc))
        case R.cfg9346: return s.cfg9346 & 0xFE | (eeprom.dataOut ? 1 : 0)
        case R.msr: return 0  // link up (LINKB 0), 100 Mbit/s
        case R.bmcr..<R.bmcr + 2: return byte(UInt32(s.bmcr), offset - Int(R.bmcr))
        case R.bmsr..<R.bmsr + 2: return byte(UInt32(Self.basicModeStatus), offset - Int(R.bmsr))
        case R.anar..<R.anar + 2: return byte(0x05E1, offset - Int(R.anar))
        case R.anlpar..<R.anlpar + 2: return byte(UInt32(Self.partnerAbility), offset - Int(R.anlpar))
        case R.aner..<R.aner + 2: return byte(1, offset - Int(R.aner))
        default:
            if let value = s.config[o] { return value }
            counters.unhandledAccesses += 1
            return 0
        }
    }

    /// A guest write of `bytes` starting at `offset` (the access stays inside the 256 bytes). Each
    /// register the access touched takes its new value first; then what a write to it does happens.
    func write(at offset: Int, bytes: [UInt8]) {
        let touched = Set(bytes.indices.map { registerStart(of: offset + $0) })
        for (i, byte) in bytes.enumerated() { store(byte, at: offset + i) }
        for register in touched.sorted() { act(on: register, written: bytes, at: offset) }
    }

    /// Stores one byte; registers whose write is an action (ISR, MPC) act in `act` instead.
    private func store(_ value: UInt8, at offset: Int) {
        let o = UInt64(offset), R = RTL8139Register.self
        switch o {
        case R.idr..<R.idr + 6: s.idr[offset] = value
        case R.mar..<R.mar + 8: s.mar[offset - Int(R.mar)] = value
        case R.tsd..<R.rbstart + 4, R.rcr..<R.rcr + 4: _ = s.storeSteering(value, at: o)
        case R.capr..<R.capr + 2: s.capr = UInt16(truncatingIfNeeded: merge(UInt32(s.capr), value, offset - Int(R.capr)))
        case R.imr..<R.imr + 2: s.imr = UInt16(truncatingIfNeeded: merge(UInt32(s.imr), value, offset - Int(R.imr)))
        case R.tcr..<R.tcr + 4: s.tcr = merge(s.tcr, value, offset - Int(R.tcr)) & ~0x7CC0_0000
        case R.bmcr..<R.bmcr + 2: s.bmcr = UInt16(truncatingIfNeeded: merge(UInt32(s.bmcr), value, offset - Int(R.bmcr))) & 0x7FFF  // reset self-clears
        case R.cr, R.isr, R.isr + 1, R.mpc..<R.mpc + 4, R.cfg9346: break
        default:
            if s.config[o] != nil { s.config[o] = value } else if !isReadOnly(o) { counters.unhandledAccesses += 1 }
        }
    }

    /// CBR, the PHY's status and ability registers and MSR: writes are ignored, as on the chip.
    private func isReadOnly(_ offset: UInt64) -> Bool {
        let R = RTL8139Register.self
        return (R.cbr..<R.cbr + 2).contains(offset) || (R.bmsr..<R.bmsr + 2).contains(offset)
            || (R.anlpar..<R.aner + 2).contains(offset) || (R.anar..<R.anar + 2).contains(offset) || offset == R.msr
    }

    /// What writing `register` does, once all its written bytes are stored.
    private func act(on register: UInt64, written bytes: [UInt8], at offset: Int) {
        let R = RTL8139Register.self
        switch register {
        case R.cr: command(bytes[Int(R.cr) - offset])
        case R.isr: s.isr &= ~UInt16(truncatingIfNeeded: value(of: R.isr, width: 2, in: bytes, at: offset))
        case R.mpc: s.missedPackets = 0
        // A shorter ring: CBR stays inside it (a hostile RCR write must not leave the device writing past it).
        case R.rcr: s.cbr = UInt16(Int(s.cbr) % s.ringLength)
        case R.cfg9346: eepromControl(bytes[Int(R.cfg9346) - offset])
        case R.tsd, R.tsd + 4, R.tsd + 8, R.tsd + 12: startTransmit(descriptor: Int(register - R.tsd) / 4)
        default: break
        }
    }

    /// The first offset of the register holding `offset` (the byte itself where registers are bytes).
    private func registerStart(of offset: Int) -> UInt64 {
        let o = UInt64(offset), R = RTL8139Register.self
        switch o {
        case R.tsd..<R.tsad: return R.tsd + (o - R.tsd) / 4 * 4
        case R.isr..<R.isr + 2: return R.isr
        case R.mpc..<R.mpc + 4: return R.mpc
        case R.rcr..<R.rcr + 4: return R.rcr
        default: return o
        }
    }

    /// The bytes of `register` (width bytes) this write carried, unwritten ones zero: for ISR's
    /// write-1-to-clear only the written bits count.
    private func value(of register: UInt64, width: Int, in bytes: [UInt8], at offset: Int) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<width {
            let index = Int(register) + i - offset
            if bytes.indices.contains(index) { value |= UInt32(bytes[index]) << (8 * i) }
        }
        return value
    }

    /// CR: RST resets at once (it reads back clear), RE and TE as written (`RTL8139State.applyCommand`);
    /// with TE on, every descriptor the driver has handed over (OWN clear) starts.
    private func command(_ value: UInt8) {
        s.applyCommand(value)
        if s.transmitEnabled { for index in 0..<4 where s.tsd[index] & RTL8139TransmitStatus.own == 0 { startTransmit(descriptor: index) } }
    }

    /// 9346CR in programming mode (EEM = 10) bit-bangs the EEPROM; any other mode deselects it.
    private func eepromControl(_ value: UInt8) {
        s.cfg9346 = value
        let programming = value >> 6 == 0b10
        eeprom.drive(select: programming && value & 0x08 != 0, clock: value & 0x04 != 0, dataIn: value & 0x02 != 0)
    }

    /// Byte `index` (0 = least significant) of a register's value.
    private func byte(_ register: UInt32, _ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: register >> (8 * index)) }

    private func merge(_ register: UInt32, _ value: UInt8, _ index: Int) -> UInt32 {
        RTL8139State.merging(register, byte: value, at: index)
    }
}
