import DeviceBus
import DP8390
import HostMonitor
import NE2000
import Testing

/// A guest on a shared NE2000 reads its own station address from the PROM.
@Suite struct GuestPROMTests {
    static let device: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    static let guest: [UInt8] = [0x52, 0x54, 0x00, 0xAB, 0xCD, 0xEF]

    let nic = NE2000(mac: GuestPROMTests.device, interrupt: InterruptLine()) { _ in }
    var view: GuestPROM { GuestPROM(device: nic, mac: Self.guest) }

    func out(_ device: BusDevice, _ offset: UInt64, _ value: UInt32) { device.write(region: 0, offset: offset, width: .byte, value: value) }

    func startRead(_ device: BusDevice, address: UInt16, count: UInt16, dcr: UInt32) {
        for (o, v): (UInt64, UInt32) in [(0x00, 0x21), (0x0E, dcr), (0x0A, UInt32(count & 0xFF)), (0x0B, UInt32(count >> 8)),
                                         (0x08, UInt32(address & 0xFF)), (0x09, UInt32(address >> 8)), (0x00, 0x0A)] {
            out(device, o, v)
        }
    }

    @Test func linuxReadsThePROMByteWiseInWordMode() {
        let view = self.view
        startRead(view, address: 0, count: 32, dcr: 0x49)
        let bytes = (0..<16).map { _ in UInt8(truncatingIfNeeded: view.read(region: 0, offset: 0x10, width: .byte)) }
        #expect(Array(bytes.prefix(6)) == Self.guest, "\(bytes)")
        #expect(bytes[14] == 0x57 && bytes[15] == 0x57)
        #expect(view.read(region: 0, offset: 0x07, width: .byte) & UInt32(ISR.remoteDMAComplete) != 0, "the device's DMA ran to its end")
    }

    @Test func wordReadsGiveTheDoubledImage() {
        let view = self.view
        startRead(view, address: 0, count: 32, dcr: 0x49)
        let words = (0..<16).map { _ in view.read(region: 0, offset: 0x10, width: .word) }
        #expect(words.prefix(6) == ArraySlice(Self.guest.map { UInt32($0) * 0x0101 }))
    }

    @Test func readsOutsideThePROMAreTheDevicesOwn() {
        let view = self.view
        // A remote write of a marker into SRAM, then a remote read of it through the view.
        for (o, v): (UInt64, UInt32) in [(0x00, 0x21), (0x0E, 0x49), (0x0A, 2), (0x0B, 0), (0x08, 0), (0x09, 0x40), (0x00, 0x12)] { out(nic, o, v) }
        nic.write(region: 0, offset: 0x10, width: .word, value: 0xBEEF)
        startRead(view, address: 0x4000, count: 2, dcr: 0x49)
        #expect(view.read(region: 0, offset: 0x10, width: .word) == 0xBEEF)
        // And the device's own PROM is untouched for a reader without the view.
        startRead(nic, address: 0, count: 2, dcr: 0x49)
        #expect(nic.read(region: 0, offset: 0x10, width: .word) == UInt32(Self.device[0]) * 0x0101)
    }
}
