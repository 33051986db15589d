import SeededRandom
import DeviceBus
import NE2000

/// What a device did to the outside: transmitted frames and interrupt line levels.
final class Recorder {
    var frames: [[UInt8]] = []
    var levels: [Bool] = []
    var risingEdges: Int { levels.filter { $0 }.count }
}

/// An NE2000 on a test bench, with port helpers named after the x86 instructions the driver uses.
final class Bench {
    static let mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    let recorder = Recorder()
    let line: InterruptLine
    let nic: NE2000

    init(mac: [UInt8] = Bench.mac) {
        let recorder = self.recorder
        line = InterruptLine { recorder.levels.append($0) }
        nic = NE2000(mac: mac, interrupt: line) { recorder.frames.append($0) }
    }

    func outb(_ value: UInt8, _ port: UInt64) { nic.write(region: 0, offset: port, width: .byte, value: UInt32(value)) }
    func inb(_ port: UInt64) -> UInt8 { UInt8(nic.read(region: 0, offset: port, width: .byte)) }
    func outw(_ value: UInt16, _ port: UInt64) { nic.write(region: 0, offset: port, width: .word, value: UInt32(value)) }
    func inw(_ port: UInt64) -> UInt16 { UInt16(nic.read(region: 0, offset: port, width: .word)) }
    func outl(_ value: UInt32, _ port: UInt64) { nic.write(region: 0, offset: port, width: .dword, value: value) }
    func inl(_ port: UInt64) -> UInt32 { nic.read(region: 0, offset: port, width: .dword) }

    /// Selects a register page, keeping the run bits clear like the driver's NODMA+PAGEn writes.
    func page(_ n: UInt8) { outb(Reg.nodma | n << 6, Reg.cr) }

    /// Reads a page 1 register and returns to page 0.
    func readPage1(_ reg: UInt64) -> UInt8 {
        page(1)
        defer { page(0) }
        return inb(reg)
    }
}

/// Register offsets and values as Linux's 8390.h spells them.
enum Reg {
    static let cr: UInt64 = 0x00
    static let pstart: UInt64 = 0x01, pstop: UInt64 = 0x02, bnry: UInt64 = 0x03
    static let tpsr: UInt64 = 0x04, tsr: UInt64 = 0x04, tbcr0: UInt64 = 0x05, tbcr1: UInt64 = 0x06
    static let isr: UInt64 = 0x07, rsar0: UInt64 = 0x08, rsar1: UInt64 = 0x09
    static let rbcr0: UInt64 = 0x0A, rbcr1: UInt64 = 0x0B, rsr: UInt64 = 0x0C, rcr: UInt64 = 0x0C
    static let tcr: UInt64 = 0x0D, cntr0: UInt64 = 0x0D, dcr: UInt64 = 0x0E, cntr2: UInt64 = 0x0F, imr: UInt64 = 0x0F
    static let par0: UInt64 = 0x01, curr: UInt64 = 0x07, mar0: UInt64 = 0x08
    static let dataPort: UInt64 = 0x10, resetPort: UInt64 = 0x1F

    static let stop: UInt8 = 0x01, start: UInt8 = 0x02, trans: UInt8 = 0x04
    static let rread: UInt8 = 0x08, rwrite: UInt8 = 0x10, nodma: UInt8 = 0x20

    static let isrRX: UInt8 = 0x01, isrTX: UInt8 = 0x02, isrTXE: UInt8 = 0x08
    static let isrCNT: UInt8 = 0x20, isrRDC: UInt8 = 0x40, isrRST: UInt8 = 0x80, isrAll: UInt8 = 0x3F
}

/// The parts of Linux's ne2k-pci + 8390 drivers the tests replay, access for access.
struct LinuxDriver {
    let bench: Bench
    let txStartPage: UInt8 = 0x40
    let rxStartPage: UInt8 = 0x4C  // tx_start_page + TX_PAGES (12)
    let stopPage: UInt8 = 0x80
    var currentPage: UInt8 = 0x4C
    var macAddress: [UInt8] = []

    init(_ bench: Bench) { self.bench = bench }

    /// ne2k_pci_init_one up to register_netdev: 8390 check, reset, PROM read, NS8390_init(dev, 0).
    mutating func probe() -> Bool {
        let b = bench
        let reg0 = b.inb(Reg.cr)
        guard reg0 != 0xFF else { return false }
        b.outb(Reg.nodma | 0x40 | Reg.stop, Reg.cr)
        _ = b.inb(0x0D)
        b.outb(0xFF, 0x0D)
        b.outb(Reg.nodma, Reg.cr)
        _ = b.inb(Reg.cntr0)
        guard b.inb(Reg.cntr0) == 0 else { return false }

        b.outb(b.inb(Reg.resetPort), Reg.resetPort)
        guard b.inb(Reg.isr) & Reg.isrRST != 0 else { return false }
        b.outb(0xFF, Reg.isr)

        let program: [(UInt8, UInt64)] = [
            (Reg.nodma | Reg.stop, Reg.cr), (0x49, Reg.dcr), (0, Reg.rbcr0), (0, Reg.rbcr1), (0, Reg.imr),
            (0xFF, Reg.isr), (0x20, Reg.rcr), (0x02, Reg.tcr), (32, Reg.rbcr0), (0, Reg.rbcr1),
            (0, Reg.rsar0), (0, Reg.rsar1), (Reg.rread | Reg.start, Reg.cr),
        ]
        for (value, port) in program { b.outb(value, port) }
        var saProm = [UInt8](repeating: 0, count: 32)
        for i in 0..<32 { saProm[i] = b.inb(Reg.dataPort) }
        b.outb(0x49, Reg.dcr)
        macAddress = Array(saProm[0..<6])
        initialize(start: false)
        return true
    }

    /// __NS8390_init.
    mutating func initialize(start: Bool) {
        let b = bench
        b.outb(Reg.nodma | Reg.stop, Reg.cr)
        b.outb(0x49, Reg.dcr)
        b.outb(0, Reg.rbcr0)
        b.outb(0, Reg.rbcr1)
        b.outb(0x20, Reg.rcr)
        b.outb(0x02, Reg.tcr)
        b.outb(txStartPage, Reg.tpsr)
        b.outb(rxStartPage, Reg.pstart)
        b.outb(stopPage - 1, Reg.bnry)
        currentPage = rxStartPage
        b.outb(stopPage, Reg.pstop)
        b.outb(0xFF, Reg.isr)
        b.outb(0, Reg.imr)
        b.outb(Reg.nodma | 0x40 | Reg.stop, Reg.cr)
        for i in 0..<6 { b.outb(macAddress[i], Reg.par0 + UInt64(i)) }
        b.outb(rxStartPage, Reg.curr)
        b.outb(Reg.nodma | Reg.stop, Reg.cr)
        if start {
            b.outb(0xFF, Reg.isr)
            b.outb(Reg.isrAll, Reg.imr)
            b.outb(Reg.nodma | Reg.start, Reg.cr)
            b.outb(0x00, Reg.tcr)
            b.outb(0x04, Reg.rcr)
            setMulticast(filter: [UInt8](repeating: 0, count: 8), rcr: 0x04)
        }
    }

    /// do_set_multicast_list with a given MAR image and final RCR.
    func setMulticast(filter: [UInt8], rcr: UInt8) {
        let b = bench
        b.outb(0x04, Reg.rcr)
        b.page(1)
        for i in 0..<8 { b.outb(filter[i], Reg.mar0 + UInt64(i)) }
        b.page(0)
        b.outb(rcr, Reg.rcr)
    }

    /// ne2k_pci_block_output (32-bit I/O, count rounded up to even) then NS8390_trigger_send.
    /// Returns false where the driver would time out waiting for RDC (and reset the card).
    @discardableResult
    func send(_ frame: [UInt8], page: UInt8? = nil) -> Bool {
        let b = bench
        let startPage = page ?? txStartPage
        let sendLength = max(frame.count, 60)
        var data = frame + [UInt8](repeating: 0, count: sendLength - frame.count)
        var count = data.count
        if count & 1 != 0 { count += 1; data.append(0) }
        data += [0, 0, 0]  // room for the last partial dword
        b.outb(Reg.nodma | Reg.start, Reg.cr)
        b.outb(Reg.isrRDC, Reg.isr)
        b.outb(UInt8(count & 0xFF), Reg.rbcr0)
        b.outb(UInt8(count >> 8), Reg.rbcr1)
        b.outb(0, Reg.rsar0)
        b.outb(startPage, Reg.rsar1)
        b.outb(Reg.rwrite | Reg.start, Reg.cr)
        for i in stride(from: 0, to: count & ~3, by: 4) {
            b.outl(UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24,
                   Reg.dataPort)
        }
        if count & 2 != 0 {
            let i = count & ~3
            b.outw(UInt16(data[i]) | UInt16(data[i + 1]) << 8, Reg.dataPort)
        }
        guard b.inb(Reg.isr) & Reg.isrRDC != 0 else { return false }
        b.outb(Reg.isrRDC, Reg.isr)
        // NS8390_trigger_send
        b.outb(Reg.nodma, Reg.cr)
        guard b.inb(Reg.cr) & Reg.trans == 0 else { return false }
        b.outb(UInt8(sendLength & 0xFF), Reg.tbcr0)
        b.outb(UInt8(sendLength >> 8), Reg.tbcr1)
        b.outb(startPage, Reg.tpsr)
        b.outb(Reg.nodma | Reg.trans | Reg.start, Reg.cr)
        return true
    }

    /// ne2k_pci_get_8390_hdr: one inl.
    func header(page: UInt8) -> (status: UInt8, next: UInt8, count: Int) {
        let b = bench
        b.outb(Reg.nodma | Reg.start, Reg.cr)
        b.outb(4, Reg.rbcr0)
        b.outb(0, Reg.rbcr1)
        b.outb(0, Reg.rsar0)
        b.outb(page, Reg.rsar1)
        b.outb(Reg.rread | Reg.start, Reg.cr)
        let word = b.inl(Reg.dataPort)
        b.outb(Reg.isrRDC, Reg.isr)
        return (UInt8(word & 0xFF), UInt8(word >> 8 & 0xFF), Int(word >> 16))
    }

    /// ne2k_pci_block_input: insl, then an inw and an inb for the tail.
    func blockInput(count: Int, offset: Int) -> [UInt8] {
        let b = bench
        b.outb(Reg.nodma | Reg.start, Reg.cr)
        b.outb(UInt8(count & 0xFF), Reg.rbcr0)
        b.outb(UInt8(count >> 8), Reg.rbcr1)
        b.outb(UInt8(offset & 0xFF), Reg.rsar0)
        b.outb(UInt8(offset >> 8), Reg.rsar1)
        b.outb(Reg.rread | Reg.start, Reg.cr)
        var out: [UInt8] = []
        for _ in 0..<(count >> 2) {
            let v = b.inl(Reg.dataPort)
            out += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)]
        }
        if count & 2 != 0 {
            let v = b.inw(Reg.dataPort)
            out += [UInt8(v & 0xFF), UInt8(v >> 8)]
        }
        if count & 1 != 0 { out.append(b.inb(Reg.dataPort)) }
        b.outb(Reg.isrRDC, Reg.isr)
        return out
    }

    /// ei_receive: at most 9 frames, with the driver's sanity checks. Returns good frames and error count.
    mutating func receive() -> (frames: [[UInt8]], errors: Int) {
        let b = bench
        var frames: [[UInt8]] = []
        var errors = 0
        let ringPages = Int(stopPage) - Int(rxStartPage)
        var packets = 0
        while true {
            packets += 1
            guard packets < 10 else { break }
            let rxingPage = b.readPage1(Reg.curr)
            var thisFrame = b.inb(Reg.bnry) &+ 1
            if thisFrame >= stopPage { thisFrame = rxStartPage }
            if thisFrame == rxingPage { break }
            let hdr = header(page: thisFrame)
            let pktLen = hdr.count - 4
            let nextFrame = Int(thisFrame) + 1 + ((pktLen + 4) >> 8)
            let next = Int(hdr.next)
            if next != nextFrame && next != nextFrame + 1 && next != nextFrame - ringPages
                && next != nextFrame + 1 - ringPages {
                currentPage = rxingPage
                b.outb(currentPage &- 1, Reg.bnry)
                errors += 1
                continue
            }
            if pktLen < 60 || pktLen > 1518 {
                errors += 1
            } else if hdr.status & 0x0F == 0x01 {
                frames.append(blockInput(count: pktLen, offset: Int(thisFrame) << 8 + 4))
            } else {
                errors += 1
            }
            var nf = hdr.next
            if nf >= stopPage { nf = rxStartPage }
            currentPage = nf
            b.outb(nf &- 1, Reg.bnry)
        }
        b.outb(Reg.isrRX | 0x04, Reg.isr)
        return (frames, errors)
    }
}

/// A frame to `destination` whose payload counts up from `seed`.
func makeFrame(to destination: [UInt8], length: Int, seed: UInt8 = 0) -> [UInt8] {
    var frame = destination + [0x02, 0, 0, 0, 0, 1, 0x08, 0x00]
    var byte = seed
    while frame.count < length {
        frame.append(byte)
        byte &+= 1
    }
    return Array(frame.prefix(length))
}

