import DeviceBus
import SeededRandom
import Testing
@testable import RTL8139

/// Any access anywhere, any frame: the device never traps, and its invariants hold after every step
/// (CBR inside the ring and 4-aligned, the line = ISR & IMR, nothing touched outside guest memory).
@Suite struct RTL8139FuzzTests {
    @Test("random accesses and frames: no trap, invariants kept", arguments: 0..<40 as Range<UInt64>)
    func randomAccesses(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let rig = Rig()
        rig.start(ring: 0x10_0000 + (random.next() % 0x10_0000), rcr: UInt32(random.next() % 4) << 11 | 0x80 | 0x0F)
        for _ in 0..<3000 {
            let width = [AccessWidth.byte, .word, .dword][Int(random.next() % 3)]
            let offset = random.next() % 300, region = UInt32(random.next() % 16 == 0 ? 1 : 0)
            switch random.next() % 4 {
            case 0: _ = rig.nic.read(region: region, offset: offset, width: width)
            case 1, 2: rig.nic.write(region: region, offset: offset, width: width, value: UInt32(truncatingIfNeeded: random.next()))
            default:
                let size = Int(random.next() % (random.next() % 8 == 0 ? 70_000 : 1600))
                rig.nic.receive(frame: Rig.frame(size: max(size, 14)).prefix(size).map { $0 })
            }
            let s = rig.nic.state
            #expect(Int(s.cbr) < s.ringLength && s.cbr % 4 == 0)
            #expect(rig.line.isAsserted == (s.isr & s.imr != 0))
        }
        #expect(rig.memory.bytes.count == 1 << 20)
    }
}
