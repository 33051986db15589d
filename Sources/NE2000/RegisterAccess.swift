import DP8390

// The DP8390 register file: one switch for reads and one for writes, decoded by page (CR.PS1–0).

extension NE2000 {
    /// Reads register `index` (0x00–0x0F) in the current page.
    func readRegister(_ index: UInt8) -> UInt8 {
        if index == Page0Read.cr.rawValue { return s.command }
        switch s.command >> CR.pageShift {
        case 0:
            switch Page0Read(rawValue: index) {
            case .clda0?: return UInt8(truncatingIfNeeded: s.localAddress)
            case .clda1?: return UInt8(truncatingIfNeeded: s.localAddress >> 8)
            case .bnry?: return s.boundary
            case .tsr?: return s.transmitStatus
            // No wire, no collisions; the FIFO is only meaningful after a loopback test.
            case .ncr?, .fifo?: return 0
            case .isr?: return s.interruptStatus
            case .crda0?: return UInt8(truncatingIfNeeded: s.remoteAddress)
            case .crda1?: return UInt8(truncatingIfNeeded: s.remoteAddress >> 8)
            case .rtl8029id0?: return 0x50
            case .rtl8029id1?: return 0x43
            case .rsr?: return s.receiveStatus
            // Tally counters clear when read (ne2k-pci's probe relies on it to tell page 0 from page 1).
            case .cntr0?: return takeTally(0)
            case .cntr1?: return takeTally(1)
            case .cntr2?: return takeTally(2)
            case .cr?, nil: break
            }
        case 1:
            switch Page1(rawValue: index) {
            case .par0?, .par1?, .par2?, .par3?, .par4?, .par5?:
                return s.physicalAddress[Int(index - Page1.par0.rawValue)]
            case .curr?: return s.currentPage
            case .mar0?, .mar1?, .mar2?, .mar3?, .mar4?, .mar5?, .mar6?, .mar7?:
                return s.multicastFilter[Int(index - Page1.mar0.rawValue)]
            case .cr?, nil: break
            }
        case 2:
            switch Page2Read(rawValue: index) {
            case .pstart?: return s.pageStart
            case .pstop?: return s.pageStop
            case .tpsr?: return s.transmitPageStart
            case .rcr?: return s.receiveConfiguration
            case .tcr?: return s.transmitConfiguration
            case .dcr?: return s.dataConfiguration
            case .imr?: return s.interruptMask
            case .cr?, .rnpp?, .lnpp?, .acu?, .acl?, .reserved8?, .reserved9?, .reservedA?, .reservedB?, nil:
                break
            }
        default:
            // Page 3 holds the RTL8029's configuration registers (9346CR, CONFIG0–3): not modelled.
            break
        }
        counters.unhandledAccesses &+= 1
        return 0
    }

    /// Writes register `index` (0x00–0x0F) in the current page.
    func writeRegister(_ index: UInt8, _ value: UInt8) {
        if index == Page0Write.cr.rawValue {
            writeCommand(value)
            return
        }
        switch s.command >> CR.pageShift {
        case 0:
            switch Page0Write(rawValue: index) {
            case .pstart?: s.pageStart = value
            case .pstop?: s.pageStop = value
            case .bnry?: s.boundary = value
            case .tpsr?: s.transmitPageStart = value
            case .tbcr0?: s.transmitByteCount = s.transmitByteCount & 0xFF00 | UInt16(value)
            case .tbcr1?: s.transmitByteCount = s.transmitByteCount & 0x00FF | UInt16(value) << 8
            case .isr?:
                // Write 1 to clear; RST only follows the run state.
                s.interruptStatus &= ~(value & ISR.sources)
                updateInterruptLine()
            case .rsar0?: s.remoteStartAddress = s.remoteStartAddress & 0xFF00 | UInt16(value)
            case .rsar1?: s.remoteStartAddress = s.remoteStartAddress & 0x00FF | UInt16(value) << 8
            case .rbcr0?: s.remoteByteCount = s.remoteByteCount & 0xFF00 | UInt16(value)
            case .rbcr1?: s.remoteByteCount = s.remoteByteCount & 0x00FF | UInt16(value) << 8
            case .rcr?: s.receiveConfiguration = value
            case .tcr?: s.transmitConfiguration = value
            case .dcr?: s.dataConfiguration = value
            case .imr?:
                s.interruptMask = value
                if value & ISR.packetReceived != 0 { receiveInterruptUsed = true }
                updateInterruptLine()
            case .cr?, nil: counters.unhandledAccesses &+= 1
            }
        case 1:
            switch Page1(rawValue: index) {
            case .par0?, .par1?, .par2?, .par3?, .par4?, .par5?:
                s.physicalAddress[Int(index - Page1.par0.rawValue)] = value
            case .curr?: s.currentPage = value
            case .mar0?, .mar1?, .mar2?, .mar3?, .mar4?, .mar5?, .mar6?, .mar7?:
                s.multicastFilter[Int(index - Page1.mar0.rawValue)] = value
            case .cr?, nil: counters.unhandledAccesses &+= 1
            }
        default:
            // Page 2 writes reach the DP8390's diagnostic pointers (CLDA, RNPP, LNPP, address counter),
            // page 3 the RTL8029 configuration; neither is modelled.
            counters.unhandledAccesses &+= 1
        }
    }

    /// CR: run state, remote DMA command, transmit, page select — in that order, as `CommandEffect`
    /// defines them. RD = 000 keeps the RD bits CR reads back, like the remote DMA itself.
    private func writeCommand(_ value: UInt8) {
        let effect = CommandEffect(command: value, wasRunning: s.isRunning)
        let keptRemote = effect.remote == .none ? s.command & CR.remoteMask : value & CR.remoteMask
        s.command = value & ~(CR.transmit | CR.remoteMask) | keptRemote
        if effect.runningAfter != s.isRunning || value & CR.stop != 0 {
            s.isRunning = effect.runningAfter
            if effect.runningAfter { s.interruptStatus &= ~ISR.reset } else { s.interruptStatus |= ISR.reset }
            updateInterruptLine()
        }
        if effect.endsRemote { s.remoteDMA = nil }
        if let kind = effect.startsRemote { startRemoteDMA(kind) }
        if effect.startsTransmit { transmit() }
    }

    /// Reads a tally counter and clears it.
    private func takeTally(_ index: Int) -> UInt8 {
        let value = s.tallyCounters[index]
        s.tallyCounters[index] = 0
        return value
    }

    /// Counts a missed packet in CNTR2. The counter saturates instead of wrapping; CNT is raised while
    /// its top bit is set, as the DP8390 does to ask the driver to empty the counters.
    func tallyMissedPacket() {
        let value = s.tallyCounters[2]
        if value < UInt8.max { s.tallyCounters[2] = value + 1 }
        if s.tallyCounters[2] & 0x80 != 0 { raise(ISR.counterOverflow) }
    }
}
