import CLibBPF
import CVPIOAgentShim
import DeviceBus
import Glibc
import RTL8139
import RTL8139Model
import SeededRandom
import Testing
import VPIOProtocol
@testable import VPIOAgentCore

/// The agent's BPF program on its RTL8139 path, run by this kernel at uprobes on user-space stand-ins
/// of 8139too's accessor calls, against the host's own rule: the intents it writes are, in order, the
/// DMA starts the host's examination finds (what `RTL8139IntentCheck` matches them with) — the C side
/// checked against the Swift definition, with write sequences no driver makes.
@Suite(.serialized) struct RTL8139ProgramTests {
    static let base: UInt16 = 0xc000
    /// The stand-ins as the sites the program is told about: iowrite32, iowrite8, iowrite16, ioread32.
    static let sites: [(kind: SiteKind, width: Int)] = [(.callWrite, 4), (.callWrite, 1), (.callWrite, 2), (.callRead, 4)]

    /// The program loaded for the RTL8139 and attached at the four stand-ins.
    final class Program {
        let bpf: AgentBPFObject
        let object: String
        let ringFD: Int32
        let statsFD: Int32

        init() throws {
            object = try BPFObjectTests.compile()
            bpf = try AgentBPFObject(path: object)
            try bpf.configure(bar0Base: RTL8139ProgramTests.base, device: .rtl8139)
            try bpf.load()
            ringFD = try #require(bpf.mapDescriptor("ring"))
            statsFD = try #require(bpf.mapDescriptor("stats"))
            for (id, site) in RTL8139ProgramTests.sites.enumerated() {
                try bpf.describeSite(id: id, kind: site.kind, width: site.width, rep: false)
                let location = try CodeLocation.of(address: vpio_iomap_probe_address(Int32(id)))
                try bpf.attachUprobe(id: id, binary: location.path, fileOffset: location.fileOffset)
            }
        }

        deinit {
            bpf.close()
            unlink(object)
        }

        /// What 8139too's iowriteN(value, ioport cookie) would pass for register `offset`.
        func write(_ offset: UInt64, width: AccessWidth, _ value: UInt32) {
            let cookie = UInt64(VPIO_PIO_OFFSET) + UInt64(RTL8139ProgramTests.base) + offset
            switch width {
            case .dword: _ = vpio_iomap_site_0(UInt64(value), cookie)
            case .byte: _ = vpio_iomap_site_1(UInt64(value), cookie)
            case .word: _ = vpio_iomap_site_2(UInt64(value), cookie)
            }
        }

        func read(_ offset: UInt64) {
            _ = vpio_iomap_site_3(UInt64(VPIO_PIO_OFFSET) + UInt64(RTL8139ProgramTests.base) + offset, 0)
        }

        /// The ring's records with claims `from..<head`, decoded (the map's value, copied by the kernel).
        func records(from first: UInt64) throws -> (records: [RingRecord], head: UInt64) {
            var bytes = [UInt8](repeating: 0, count: VPIORing.bytes)
            var key: UInt32 = 0
            try #require(bpf_map_lookup_elem(ringFD, &key, &bytes) == 0)
            let header = try #require(RingHeader(bytes: Array(bytes[0..<VPIORing.HeaderOffset.size])))
            try #require(header.head &- first <= UInt64(VPIORing.capacity), "more intents than the ring holds between two reads")
            let records = try (first..<header.head).map { claim in
                let at = VPIORing.recordOffset(slot: Int(claim % UInt64(VPIORing.capacity)))
                return try RingRecord(bytes: Array(bytes[at..<at + VPIORing.recordSize]))
            }
            return (records, header.head)
        }

        var stats: vpio_stats {
            var value = vpio_stats(), key: UInt32 = 0
            _ = bpf_map_lookup_elem(statsFD, &key, &value)
            return value
        }
    }

    /// The host's side: each write examined against the registers as the device holds them (a started
    /// transmit is handed back: the device sends it within the write), the starts in the host's order.
    struct HostRule {
        struct Start: Equatable, CustomStringConvertible {
            var kind: IntentKind, start: UInt32, count: UInt32
            var description: String { "\(kind) 0x\(String(start, radix: 16))+\(count)" }
        }
        var device = RTL8139State()
        let check = RTL8139DMACheck(allowed: [0..<UInt64.max])

        mutating func write(_ offset: UInt64, width: AccessWidth, _ value: UInt32) -> [Start] {
            let examination = check.examine(offset: offset, width: width, value: value, device: device)
            device.applySteeringWrite(offset: offset, width: width, value: value)
            var starts = examination.transmits.map {
                Start(kind: .busTransmit, start: device.tsad[$0], count: device.tsd[$0] & RTL8139TransmitStatus.sizeMask)
            }
            for index in examination.transmits { device.tsd[index] |= RTL8139TransmitStatus.own }
            if let ring = examination.ring {
                starts.append(Start(kind: .receiveRing, start: UInt32(truncatingIfNeeded: ring.lowerBound),
                                    count: UInt32(truncatingIfNeeded: ring.upperBound - ring.lowerBound)))
            }
            return starts
        }
    }

    /// One random write of a form 8139too uses (32-bit descriptors, RBSTART and RCR, CR by byte), or to a
    /// register that steers nothing; biased to the moves that matter (TSD with OWN clear, CR's TE/RE/RST).
    static func randomWrite(_ rng: inout SplitMix64) -> (UInt64, AccessWidth, UInt32) {
        let descriptor = UInt64.random(in: 0..<4, using: &rng) * 4
        let size = UInt32.random(in: 0...0x1FFF, using: &rng)
        switch Int.random(in: 0..<9, using: &rng) {
        case 0, 1: return (RTL8139Register.tsd + descriptor, .dword, size | (Bool.random(using: &rng) ? 0 : RTL8139TransmitStatus.own))
        case 2: return (RTL8139Register.tsad + descriptor, .dword, UInt32.random(in: 0...UInt32.max, using: &rng))
        case 3: return (RTL8139Register.rbstart, .dword, UInt32.random(in: 0...UInt32.max, using: &rng))
        case 4: return (RTL8139Register.rcr, .dword, UInt32.random(in: 0...UInt32.max, using: &rng))
        case 5, 6:
            let commands: [UInt8] = [0x0C, 0x08, 0x04, 0x00, 0x10, 0x1C, UInt8.random(in: 0...255, using: &rng)]
            return (RTL8139Register.cr, .byte, UInt32(commands.randomElement(using: &rng)!))
        case 7: return (RTL8139Register.imr, .word, UInt32.random(in: 0...0xFFFF, using: &rng))
        default: return (RTL8139Register.cfg9346, .byte, UInt32.random(in: 0...255, using: &rng))
        }
    }

    @Test(.enabled(if: AgentCostTests.skipReason == nil, Comment(rawValue: AgentCostTests.skipReason ?? "")))
    func theProgramAnnouncesWhatTheHostFinds() throws {
        let program = try Program()
        var host = HostRule()
        var rng = SplitMix64(seed: 0x8139)
        var head: UInt64 = 0, writes = 0, announced = 0
        for _ in 0..<40 {
            var expected: [HostRule.Start] = []
            for _ in 0..<40 {
                let (offset, width, value) = Self.randomWrite(&rng)
                program.read(RTL8139Register.isr)
                program.write(offset, width: width, value)
                expected += host.write(offset, width: width, value)
                writes += 1
            }
            let (records, next) = try program.records(from: head)
            head = next
            let found = records.compactMap { record -> HostRule.Start? in
                guard case let .dmaIntent(kind, _, start, count, _, _) = record.body else { return nil }
                return HostRule.Start(kind: kind, start: start, count: count)
            }
            try #require(found == expected, "after \(writes) writes")
            announced += found.count
        }
        let stats = program.stats
        print("rtl8139 program: \(writes) writes, \(announced) intents as the host finds them")
        #expect(announced > 300 && stats.intents == UInt64(announced))
        #expect(stats.unmodelled == 0 && stats.foreign == 0 && stats.events_lost == 0)
        #expect(stats.hits == UInt64(2 * writes), "one run per read and per write")
    }

    /// What the program does not model it counts (the agent then reports itself unsure), and an access
    /// to no port of BAR0 (the memory BAR's cookie) is foreign.
    @Test(.enabled(if: AgentCostTests.skipReason == nil, Comment(rawValue: AgentCostTests.skipReason ?? "")))
    func itSaysWhatItCannotPlace() throws {
        let program = try Program()
        program.write(RTL8139Register.tsd, width: .word, 0x0100)
        program.write(RTL8139Register.rbstart + 2, width: .word, 0x0010)
        _ = vpio_iomap_site_0(0x0C, 0xFFFF_C900_0000_0037)
        let stats = program.stats
        #expect(stats.unmodelled == 2 && stats.foreign == 1 && stats.intents == 0)
        #expect(try program.records(from: 0).records.isEmpty)
    }
}
