import DeviceBus
import DP8390
import NE2000Model

/// The host's own view of the DP8390's readable registers, through the black-box device interface only,
/// as a host in front of real hardware would read them: switch the page with CR writes whose remote
/// command is RD = 000 (which starts and ends nothing), read, and put CR back exactly as it was. The
/// guest never sees it: its vCPU is stalled inside the trapped access meanwhile. These are host
/// accesses, not guest ones: no monitor counts them.
public struct RegisterWindow {
    public let device: BusDevice

    public init(device: BusDevice) { self.device = device }

    /// Everything a trapped CR write is judged with, read before it reaches the device (CRDA is read
    /// after: see `currentRemoteAddress`).
    public func valuesBeforeCommand() -> ReadbackValues {
        let saved = readCR()
        select(page: 0, from: saved)
        let isr = read(Page0Read.isr.rawValue)
        select(page: 2, from: saved)
        let values = ReadbackValues(pstart: read(Page2Read.pstart.rawValue), pstop: read(Page2Read.pstop.rawValue),
                                    tpsr: read(Page2Read.tpsr.rawValue), tcr: read(Page2Read.tcr.rawValue),
                                    running: isr & ISR.reset == 0)
        restore(saved)
        return values
    }

    /// CRDA now (page 0, 0x08–0x09): after a remote command, where the remote DMA starts.
    public func currentRemoteAddress() -> UInt16 {
        let saved = readCR()
        select(page: 0, from: saved)
        let address = UInt16(read(Page0Read.crda0.rawValue)) | UInt16(read(Page0Read.crda1.rawValue)) << 8
        restore(saved)
        return address
    }

    /// PSTART and PSTOP (page 2): the ring a received frame is stored into.
    public func receiveRing() -> (pstart: UInt8, pstop: UInt8, curr: UInt8) {
        let saved = readCR()
        select(page: 2, from: saved)
        let pstart = read(Page2Read.pstart.rawValue), pstop = read(Page2Read.pstop.rawValue)
        select(page: 1, from: saved)
        let curr = read(Page1.curr.rawValue)
        restore(saved)
        return (pstart, pstop, curr)
    }

    /// ISR (page 0) and IMR (page 2): whether an interrupt is pending, and what is set but masked.
    public func interruptState() -> (status: UInt8, mask: UInt8) {
        let saved = readCR()
        select(page: 0, from: saved)
        let status = read(Page0Read.isr.rawValue)
        select(page: 2, from: saved)
        let mask = read(Page2Read.imr.rawValue)
        restore(saved)
        return (status, mask)
    }

    /// DCR (page 2): how many bytes a data-port access moves.
    public func dataConfiguration() -> UInt8 {
        let saved = readCR()
        select(page: 2, from: saved)
        let dcr = read(Page2Read.dcr.rawValue)
        restore(saved)
        return dcr
    }

    /// Writes a page-0 register with the page switched there and back.
    public func writePage0(_ register: Page0Write, _ value: UInt8) {
        let saved = readCR()
        select(page: 0, from: saved)
        write(register.rawValue, value)
        restore(saved)
    }

    public func readCR() -> UInt8 { read(CR.offset) }

    /// A CR write that selects `page`, keeps STA/STP as CR shows them and carries RD = 000.
    private func select(page: UInt8, from saved: UInt8) {
        write(CR.offset, saved & (CR.start | CR.stop) | page << CR.pageShift)
    }

    /// Puts CR back: RD = 000 keeps the RD bits CR reads back, so the guest reads what it left.
    private func restore(_ saved: UInt8) {
        write(CR.offset, saved & ~(CR.remoteMask | CR.transmit))
    }

    private func read(_ offset: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: device.read(region: 0, offset: UInt64(offset), width: .byte))
    }

    public func write(_ offset: UInt8, _ value: UInt8) {
        device.write(region: 0, offset: UInt64(offset), width: .byte, value: UInt32(value))
    }
}
