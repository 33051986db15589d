import DeviceBus
import NE2000
import Testing

@Suite struct FilterTests {
    func openedNIC() -> (Bench, LinuxDriver) {
        let b = Bench()
        var driver = LinuxDriver(b)
        _ = driver.probe()
        driver.initialize(start: true)
        return (b, driver)
    }

    /// Linux's ether_crc: bitrev32(crc32_le(~0, addr, 6)), computed here the reflected way so it checks
    /// the model's MSB-first computation independently.
    static func etherCRC(_ address: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in address {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        var reversed: UInt32 = 0
        for i in 0..<32 where crc & (1 << i) != 0 { reversed |= 1 << (31 - i) }
        return reversed
    }

    /// make_mc_bits for a list of addresses.
    static func filterBits(_ addresses: [[UInt8]]) -> [UInt8] {
        var bits = [UInt8](repeating: 0, count: 8)
        for address in addresses {
            let crc = etherCRC(address)
            bits[Int(crc >> 29)] |= 1 << ((crc >> 26) & 7)
        }
        return bits
    }

    @Test func unicastToOtherMACIsRejected() {
        let (b, _) = openedNIC()
        #expect(!b.nic.receive(frame: makeFrame(to: [0x52, 0x54, 0x00, 0x12, 0x34, 0x57], length: 100)))
        #expect(b.nic.counters.framesDiscarded == 1)
        #expect(b.nic.receive(frame: makeFrame(to: Bench.mac, length: 100)))
        // The filter compares PAR, not the PROM.
        b.page(1)
        b.outb(0x99, Reg.par0 + 5)
        b.page(0)
        #expect(!b.nic.receive(frame: makeFrame(to: Bench.mac, length: 100)))
    }

    @Test func broadcastNeedsAB() {
        let (b, driver) = openedNIC()
        let broadcast = makeFrame(to: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], length: 100)
        #expect(b.nic.receive(frame: broadcast))
        #expect(b.inb(Reg.rsr) == 0x21, "PRX + PHY for broadcast")
        driver.setMulticast(filter: [UInt8](repeating: 0xFF, count: 8), rcr: 0x08)
        #expect(!b.nic.receive(frame: broadcast))
    }

    @Test func multicastFollowsTheHashLinuxBuilds() {
        let (b, driver0) = openedNIC()
        var driver = driver0
        let joined: [[UInt8]] = [[0x01, 0x00, 0x5E, 0x00, 0x00, 0x01], [0x33, 0x33, 0x00, 0x00, 0x00, 0x01]]
        let filter = Self.filterBits(joined)
        driver.setMulticast(filter: filter, rcr: 0x04 | 0x08)
        for group in joined {
            #expect(b.nic.receive(frame: makeFrame(to: group, length: 80)))
            #expect(b.inb(Reg.rsr) == 0x21)
        }
        // Groups whose hash bit is clear are rejected.
        var rejected = 0
        for last in UInt8(2)...UInt8(200) {
            let group: [UInt8] = [0x01, 0x00, 0x5E, 0x00, 0x00, last]
            let crc = Self.etherCRC(group)
            let hit = filter[Int(crc >> 29)] & (1 << ((crc >> 26) & 7)) != 0
            #expect(b.nic.receive(frame: makeFrame(to: group, length: 80)) == hit)
            if !hit { rejected += 1 }
            _ = driver.receive()
        }
        #expect(rejected > 150)
        // Without AM nothing multicast gets through.
        driver.setMulticast(filter: filter, rcr: 0x04)
        #expect(!b.nic.receive(frame: makeFrame(to: joined[0], length: 80)))
    }

    @Test func promiscuousTakesEverything() {
        let (b, driver) = openedNIC()
        driver.setMulticast(filter: [UInt8](repeating: 0xFF, count: 8), rcr: 0x04 | 0x18)
        #expect(b.nic.receive(frame: makeFrame(to: [0x02, 0, 0, 0, 0, 9], length: 100)))
        #expect(b.nic.receive(frame: makeFrame(to: [0x03, 0, 0, 0, 0, 9], length: 100)))
    }
}
