import Foundation
import DeviceBus
import Testing
@testable import RTL8139

@Suite struct RTL8139RegisterTests {
    @Test func powerOnAndReset() {
        let rig = Rig()
        rig.w8(RTL8139Register.cr, RTL8139Command.reset)
        #expect(rig.r8(RTL8139Register.cr) == RTL8139Command.bufferEmpty, "RST reads back clear; the ring is empty")
        #expect(rig.r32(RTL8139Register.tcr) & 0x7CC0_0000 == 0x7400_0000, "8139too's RTL-8139C")
        #expect(rig.r16(RTL8139Register.bmsr) & 0x0024 == 0x0024, "link up, autonegotiation complete")
        #expect((0..<6).map { rig.r8(RTL8139Register.idr + UInt64($0)) } == Rig.mac)
        #expect(rig.r32(RTL8139Register.tsd(2)) == RTL8139TransmitStatus.own)
    }

    @Test func isrClearsOnlyTheWrittenOnes() {
        let rig = Rig()
        rig.start(ring: 0x10_0000)
        rig.nic.receive(frame: Rig.frame())
        rig.w32(RTL8139Register.tsad(0), 0x10_8000)
        rig.w32(RTL8139Register.tsd(0), 60)
        #expect(rig.r16(RTL8139Register.isr) == RTL8139Interrupt.receiveOK | RTL8139Interrupt.transmitOK)
        #expect(rig.line.isAsserted)
        rig.w8(RTL8139Register.isr + 1, 0xFF)  // the high byte only
        #expect(rig.r16(RTL8139Register.isr) == RTL8139Interrupt.receiveOK | RTL8139Interrupt.transmitOK)
        rig.w16(RTL8139Register.isr, RTL8139Interrupt.transmitOK)
        #expect(rig.r16(RTL8139Register.isr) == RTL8139Interrupt.receiveOK)
        rig.w16(RTL8139Register.imr, RTL8139Interrupt.transmitOK)
        #expect(!rig.line.isAsserted, "ISR & IMR is zero")
    }

    @Test func anyWidthAnyOffset() {
        let rig = Rig()
        rig.w32(RTL8139Register.rbstart, 0x1234_5678)
        #expect(rig.r8(RTL8139Register.rbstart + 3) == 0x12 && rig.r16(RTL8139Register.rbstart + 1) == 0x3456)
        rig.w8(RTL8139Register.rbstart + 2, 0xAB)
        #expect(rig.r32(RTL8139Register.rbstart) == 0x12AB_5678)
        rig.w16(RTL8139Register.capr, 0x0123)
        #expect(rig.r16(RTL8139Register.capr) == 0x0123 && rig.r8(RTL8139Register.capr + 1) == 0x01)
        #expect(rig.r16(RTL8139Register.cbr) == 0)
        rig.w16(RTL8139Register.cbr, 0x4444)
        #expect(rig.r16(RTL8139Register.cbr) == 0, "CBR is the device's")
        #expect(rig.nic.read(region: 0, offset: 0xFE, width: .dword) == 0xFFFF_FFFF, "past the block: all ones")
        #expect(rig.nic.read(region: 1, offset: RTL8139Register.rbstart, width: .dword) == 0x12AB_5678, "BAR1 (MMIO): the same registers")
        #expect(rig.nic.read(region: 2, offset: 0, width: .byte) == 0xFF)
        rig.nic.write(region: 0, offset: 0xFF, width: .word, value: 0)
        #expect(rig.nic.counters.unhandledAccesses == 3)
    }

    /// The MAC as 8139too reads it: read_eeprom's bit-banging, first probing with 8 address bits.
    @Test func eepromAsTheDriverReadsIt() {
        let rig = Rig()
        func read(_ location: Int, addressBits: Int) -> UInt16 {
            let enable: UInt8 = 0x80 | 0x08, clock: UInt8 = 0x04, dataIn: UInt8 = 0x02
            let command = location | 6 << addressBits
            rig.w8(RTL8139Register.cfg9346, enable & ~0x08)
            rig.w8(RTL8139Register.cfg9346, enable)
            for i in stride(from: 4 + addressBits, through: 0, by: -1) {
                let bit = command & 1 << i != 0 ? dataIn : 0
                rig.w8(RTL8139Register.cfg9346, enable | bit)
                rig.w8(RTL8139Register.cfg9346, enable | bit | clock)
            }
            rig.w8(RTL8139Register.cfg9346, enable)
            var value: UInt16 = 0
            for _ in 0..<16 {
                rig.w8(RTL8139Register.cfg9346, enable | clock)
                value = value << 1 | UInt16(rig.r8(RTL8139Register.cfg9346) & 1)
                rig.w8(RTL8139Register.cfg9346, enable)
            }
            rig.w8(RTL8139Register.cfg9346, 0)
            return value
        }
        #expect(read(0, addressBits: 8) != 0x8129, "a 93C46: 8139too then uses 6 address bits")
        #expect(read(0, addressBits: 6) == 0x8129)
        let words = (7...9).map { read($0, addressBits: 6) }
        #expect(words.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } == Rig.mac)
    }

    /// Linux's old bitwise ether_crc, written independently: the multicast hash must agree with it.
    @Test func crcAndMulticastHash() {
        #expect(EthernetCRC.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        for address: [UInt8] in [[0x01, 0x00, 0x5E, 0x00, 0x00, 0x01], [0x33, 0x33, 0x00, 0x00, 0x00, 0x01], [0xFF, 0, 0x10, 0x20, 0x30, 0x40]] {
            var crc: Int32 = -1
            for var octet in address {
                for _ in 0..<8 {
                    crc = (crc << 1) ^ (((crc < 0) != (octet & 1 == 1)) ? Int32(bitPattern: 0x04C1_1DB7) : 0)
                    octet >>= 1
                }
            }
            #expect(EthernetCRC.multicastHashBit(address) == Int(UInt32(bitPattern: crc) >> 26))
        }
    }
}

@Suite struct RTL8139DMATests {
    @Test func transmitReadsTheBufferInGuestMemory() {
        let rig = Rig()
        rig.start(ring: 0x10_0000)
        let frame = Rig.frame(to: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], size: 100, fill: 0x3C)
        _ = rig.memory.write(guestAddress: 0x12_0000, bytes: frame)
        rig.w32(RTL8139Register.tsad(1), 0x12_0000)
        rig.w32(RTL8139Register.tsd(1), 100 | 0x0030_0000)
        #expect(rig.sent == [frame])
        #expect(rig.r32(RTL8139Register.tsd(1)) == 100 | 0x0030_0000 | RTL8139TransmitStatus.own | RTL8139TransmitStatus.ok)
    }

    @Test("a transmit buffer outside guest memory, or running past its end, is never read: TABT and TER",
          arguments: [UInt64(0x0), UInt64(0x10_0000 + (1 << 20) - 50), UInt64(0xFFFF_FFF0)])
    func transmitOutsideIsAborted(address: UInt64) {
        let rig = Rig()
        rig.start(ring: 0x10_0000)
        rig.w32(RTL8139Register.tsad(0), UInt32(address))
        rig.w32(RTL8139Register.tsd(0), 100)
        #expect(rig.sent.isEmpty && rig.memory.refused == 1)
        #expect(rig.r32(RTL8139Register.tsd(0)) & (RTL8139TransmitStatus.own | RTL8139TransmitStatus.aborted | RTL8139TransmitStatus.ok)
                == RTL8139TransmitStatus.own | RTL8139TransmitStatus.aborted)
        #expect(rig.r16(RTL8139Register.isr) & RTL8139Interrupt.transmitError != 0 && rig.nic.counters.transmitsRefused == 1)
    }

    @Test func transmitWaitsForTE() {
        let rig = Rig()
        rig.w32(RTL8139Register.tsad(0), 0x10_0000)
        rig.w32(RTL8139Register.tsd(0), 60)
        #expect(rig.sent.isEmpty)
        rig.w8(RTL8139Register.cr, RTL8139Command.transmitEnable)
        #expect(rig.sent.count == 1)
    }

    @Test func receiveWritesHeaderFrameAndCRCIntoTheRing() {
        let rig = Rig()
        let ring: UInt64 = 0x11_0000
        rig.start(ring: ring)
        let frame = Rig.frame(size: 70)
        #expect(rig.nic.receive(frame: frame))
        let header = rig.memory[ring, 4]
        #expect(header == [0x01, 0x40, 74, 0], "ROK | PAM, length with CRC")
        #expect(rig.memory[ring + 4, 70] == frame)
        let crc = EthernetCRC.checksum(frame)
        #expect(rig.memory[ring + 74, 4] == (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * $0)) })
        #expect(rig.r16(RTL8139Register.cbr) == 80 && rig.r8(RTL8139Register.cr) & RTL8139Command.bufferEmpty == 0)
        #expect(rig.drain(ring: ring) == [frame])
        #expect(rig.r8(RTL8139Register.cr) & RTL8139Command.bufferEmpty != 0)
        #expect(!rig.nic.receive(frame: Rig.frame(to: [0x52, 0x54, 0, 0, 0, 9])), "another station's frame is filtered")
        #expect(rig.nic.receive(frame: Array(Rig.frame(size: 20).prefix(20))) && rig.r16(RTL8139Register.cbr) == 80 + 68, "padded to 60")
    }

    /// Many packets through an 8 KiB ring, consumed as the driver does: without WRAP a packet at the end
    /// continues at the start; with it, past the end. Every frame comes back intact.
    @Test("frames through the ring and across its end", arguments: [false, true])
    func ringWraps(noWrap: Bool) {
        let rig = Rig()
        let ring: UInt64 = 0x11_0000
        rig.start(ring: ring, rcr: noWrap ? RTL8139ReceiveConfig.noWrap : 0)
        var received: [[UInt8]] = []
        var expected: [[UInt8]] = []
        for i in 0..<40 {
            let frame = Rig.frame(size: 300 + 29 * i, fill: UInt8(i))
            expected.append(frame)
            #expect(rig.nic.receive(frame: frame))
            if i % 3 == 2 {
                received += noWrap ? rig.drain(ring: ring) : drainWrapping(rig, ring: ring)
            }
        }
        received += noWrap ? rig.drain(ring: ring) : drainWrapping(rig, ring: ring)
        let firstWrong = zip(received, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(received.count == expected.count && firstWrong == nil, "\(received.count) frames back; first wrong: \(firstWrong ?? -1)")
    }

    /// The driver's read of a wrapping ring: the bytes past the end come from the start.
    private func drainWrapping(_ rig: Rig, ring: UInt64) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        let ringBytes = { rig.memory[ring, 8192] }
        while rig.r8(RTL8139Register.cr) & RTL8139Command.bufferEmpty == 0 {
            let bytes = ringBytes()
            let offset = Int(rig.r16(RTL8139Register.capr) &+ 16) % 8192
            let at = { (i: Int) in bytes[(offset + i) % 8192] }
            let size = Int(at(2)) | Int(at(3)) << 8
            frames.append((0..<(size - 4)).map { at(4 + $0) })
            rig.w16(RTL8139Register.capr, UInt16(truncatingIfNeeded: ((offset + size + 4 + 3) & ~3) - 16))
        }
        return frames
    }

    /// Found by the adversarial test: a guest shrinking the ring (RCR.RBLEN) with CBR past the new end
    /// made the next packet's split point negative and trapped the host. CBR now stays inside the ring.
    @Test func shrinkingTheRingKeepsCBRInside() {
        let rig = Rig()
        let ring: UInt64 = 0x11_0000
        rig.start(ring: ring, rcr: 3 << RTL8139ReceiveConfig.lengthShift)  // 64 KiB
        for _ in 0..<8 { rig.nic.receive(frame: Rig.frame(size: 1514)) }
        rig.w16(RTL8139Register.capr, rig.r16(RTL8139Register.cbr) &- 16)
        #expect(rig.r16(RTL8139Register.cbr) > 8192)
        rig.w8(RTL8139Register.rcr + 1, 0)  // RBLEN 0: 8 KiB, written as RCR's second byte alone
        #expect(rig.r16(RTL8139Register.cbr) < 8192)
        #expect(rig.nic.receive(frame: Rig.frame(size: 1514)), "the device goes on, inside the 8 KiB ring")
        #expect(rig.memory.refused == 0)
    }

    @Test func aFullRingKeepsWhatTheDriverHasNotRead() {
        let rig = Rig()
        let ring: UInt64 = 0x11_0000
        rig.start(ring: ring)
        var stored = 0
        for i in 0..<10 where rig.nic.receive(frame: Rig.frame(size: 1514, fill: UInt8(i))) { stored += 1 }
        #expect(stored == 5, "8 KiB holds five 1,528-byte packets and never a sixth onto the first")
        #expect(rig.nic.canReceiveFrame, "with RxOverflow unmasked a full ring takes frames from the wire, drops them and says so")
        rig.w16(RTL8139Register.imr, 0xFFFF & ~RTL8139Interrupt.receiveOverflow)
        #expect(!rig.nic.canReceiveFrame, "without: back-pressure")
        rig.w16(RTL8139Register.imr, 0xFFFF)
        #expect(rig.r32(RTL8139Register.mpc) == 5 && rig.r16(RTL8139Register.isr) & RTL8139Interrupt.receiveOverflow != 0)
        #expect(rig.memory[ring + 4, 1514] == Rig.frame(size: 1514, fill: 0))
        #expect(rig.drain(ring: ring).count == 5 && rig.nic.canReceiveFrame)
    }

    @Test("a receive ring outside guest memory is never written: RER, the frame dropped",
          arguments: [UInt64(0x1000), UInt64(0x10_0000 + (1 << 20) - 40)])
    func receiveOutsideIsRefused(ring: UInt64) {
        let rig = Rig()
        rig.start(ring: ring)
        let before = rig.memory.bytes
        #expect(!rig.nic.receive(frame: Rig.frame(size: 100)))
        #expect(rig.memory.bytes == before && rig.memory.refused >= 1)
        #expect(rig.r16(RTL8139Register.isr) & RTL8139Interrupt.receiveError != 0 && rig.nic.counters.receivesRefused == 1)
        #expect(rig.r16(RTL8139Register.cbr) == 0)
    }
}

@Suite struct RTL8139CHeaderTests {
    /// The BPF program's header is this module's rendering: a stale copy is a second definition.
    @Test func theCommittedCHeaderIsTheGeneratedOne() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../guest-agent/bpf/rtl8139.h").standardized
        let committed = try String(contentsOf: path, encoding: .utf8)
        #expect(committed == RTL8139CHeader.render(), "regenerate with: vpio rtl8139-header > guest-agent/bpf/rtl8139.h")
    }
}
