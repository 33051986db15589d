import DeviceBus
import SeededRandom
import Testing
@testable import RTL8139
import RTL8139Model

/// The RTL8139's DMA check against a root guest: random register programs — descriptors and rings
/// aimed at the agent's ring, across its edges and past the end of RAM, partial and overlapping writes,
/// resets, TE and RE toggled while transmits are pending — interleaved with frames from the wire. The
/// oracle is the memory itself: every byte the device read or wrote must lie in the guest's memory and
/// outside the forbidden range. Only the cooperative set's writes reach the check (RTL8139HookSet); the
/// rest go to the device unseen. Run without the check, the same programs do reach the forbidden range
/// (the oracle can fail).
@Suite struct AdversarialDMATests {
    static let ram: Range<UInt64> = 0x10_0000..<0x20_0000
    static let forbidden: Range<UInt64> = 0x18_0000..<0x18_5000

    /// Guest RAM that records the ranges the device actually read or wrote.
    final class OracleMemory: WritableGuestMemory {
        let inner = FakeMemory(base: AdversarialDMATests.ram.lowerBound, size: Int(AdversarialDMATests.ram.count))
        var touched: [Range<UInt64>] = []

        func read(guestAddress: UInt64, count: Int) -> [UInt8]? {
            let bytes = inner.read(guestAddress: guestAddress, count: count)
            if bytes != nil, count > 0 { touched.append(guestAddress..<guestAddress + UInt64(count)) }
            return bytes
        }

        func write(guestAddress: UInt64, bytes: [UInt8]) -> Bool {
            let done = inner.write(guestAddress: guestAddress, bytes: bytes)
            if done, !bytes.isEmpty { touched.append(guestAddress..<guestAddress + UInt64(bytes.count)) }
            return done
        }
    }

    struct Outcome {
        var violations: [Range<UInt64>] = []
        var transmitted = 0
        var received = 0
        var denied = 0
    }

    /// One program of `steps` random actions; `gated` puts the check in front of the device: the
    /// cooperative one over `hooks` reading the device's registers, or with `vmmModel` vpio-host's
    /// vmm-model monitor, which judges from its own model fed only the writes it traps.
    static func run(seed: UInt64, steps: Int, gated: Bool, hooks: [ClosedRange<UInt64>] = RTL8139HookSet.cooperativeWrites,
                    vmmModel: Bool = false) -> Outcome {
        var random = SplitMix64(seed: seed)
        let memory = OracleMemory()
        var transmitted = 0
        let nic = RTL8139(mac: Rig.mac, memory: memory, interrupt: InterruptLine(), transmit: { _ in transmitted += 1 })
        let check = RTL8139DMACheck(allowed: [ram], forbidden: [forbidden])
        var monitors = RTL8139Monitors(enforced: .vmmModel)
        var outcome = Outcome()
        for _ in 0..<steps {
            if let (offset, width, value) = randomWrite(&random) {
                // Only the trapped writes exit; the rest reach the device unseen by the host.
                let access = BusAccess(direction: .write, region: 0, offset: offset, width: width, value: value)
                let exits = gated && RTL8139HookSet.traps(offset: offset, width: width, direction: .write, set: hooks)
                let verdict = vmmModel ? monitors.write(access, device: nic.state, check: check)
                    : exits ? check.judge(offset: offset, width: width, value: value, device: nic.state) : .pass
                if vmmModel, case let .deny(transmits, _) = verdict {
                    monitors.settle(access, delivered: false, aborted: transmits.map(\.descriptor))
                } else if vmmModel {
                    monitors.settle(access, delivered: true, aborted: [])
                }
                if case let .deny(transmits, _) = verdict {
                    outcome.denied += 1
                    for denial in transmits { nic.abortTransmit(descriptor: denial.descriptor) }
                } else {
                    nic.write(region: 0, offset: offset, width: width, value: value)
                }
            } else if nic.receive(frame: Rig.frame(size: Int.random(in: 14...1514, using: &random))) {
                outcome.received += 1
            }
            if random.next() % 4 == 0 { nic.write(region: 0, offset: RTL8139Register.capr, width: .word, value: UInt32(nic.state.cbr &- 16)) }
        }
        outcome.transmitted = transmitted
        outcome.violations = memory.touched.filter { !(ram.lowerBound <= $0.lowerBound && $0.upperBound <= ram.upperBound) || $0.overlaps(forbidden) }
        return outcome
    }

    /// A write to a DMA-steering register (nil: a frame arrives instead), with hostile addresses.
    static func randomWrite(_ random: inout SplitMix64) -> (UInt64, AccessWidth, UInt32)? {
        let addresses: [UInt64] = [ram.lowerBound + 0x1000, forbidden.lowerBound - 100, forbidden.lowerBound - 8192,
                                   forbidden.upperBound - 10, forbidden.lowerBound + 0x800, ram.upperBound - 50,
                                   ram.upperBound - 8192, ram.upperBound - 8192 - 16, 0x4_0000, 0xFFFF_FF00,
                                   forbidden.lowerBound - 8192 - 100, forbidden.lowerBound - 16384, forbidden.lowerBound - 8192]
        let address = UInt32(truncatingIfNeeded: random.next() % 8 == 0 ? random.next() : addresses[Int(random.next() % UInt64(addresses.count))])
        let index = Int(random.next() % 4)
        let size = UInt32(random.next() % 1800)
        switch random.next() % 16 {
        case 10, 11:  // anywhere in the block, any width: what does not trap must not steer a DMA
            let width = [AccessWidth.byte, .word, .dword][Int(random.next() % 3)]
            return (random.next() % UInt64(257 - width.rawValue), width, UInt32(truncatingIfNeeded: random.next()))
        case 0: return (RTL8139Register.tsad(index), .dword, address)
        case 1:  // part of a TSAD: the device merges it with the rest
            let width: AccessWidth = random.next() % 2 == 0 ? .word : .byte
            let byte = random.next() % UInt64(5 - width.rawValue)
            return (RTL8139Register.tsad(index) + byte, width, address >> (8 * UInt32(byte)))
        case 2, 3: return (RTL8139Register.tsd(index), .dword, size | (random.next() % 6 == 0 ? RTL8139TransmitStatus.own : 0))
        case 4: return (RTL8139Register.tsd(index) + 1, .byte, UInt32(random.next() % 256))  // OWN and the size's high bits
        case 5: return (RTL8139Register.rbstart, random.next() % 2 == 0 ? .dword : .word, address)
        case 6: return (RTL8139Register.rcr, .dword, UInt32(random.next() % 4) << 11 | (random.next() % 2 == 0 ? 0x80 : 0) | 0x0F)
        case 7: return (RTL8139Register.cr, .byte, UInt32([0x0C, 0x0C, 0x08, 0x04, 0x00, 0x1C][Int(random.next() % 6)]))
        case 8: return (RTL8139Register.rbstart + 4, .dword, UInt32([0x0C, 0x08, 0x04][Int(random.next() % 3)]) << 24)  // CR via 0x34
        default: return nil
        }
    }

    @Test("no DMA outside the guest's memory or into the forbidden range, whatever the guest programs")
    func theCheckHolds() {
        var total = Outcome()
        for seed in 0..<300 as Range<UInt64> {
            let outcome = Self.run(seed: seed, steps: 300, gated: true)
            #expect(outcome.violations.isEmpty, "seed \(seed): the device touched \(outcome.violations.prefix(3))")
            total.transmitted += outcome.transmitted; total.received += outcome.received; total.denied += outcome.denied
        }
        print("RTL8139 adversarial DMA: 300 programs, \(total.transmitted) transmits, \(total.received) frames received, \(total.denied) writes denied")
        #expect(total.transmitted > 1000 && total.received > 1000 && total.denied > 1000, "not vacuous")
    }

    /// The same programs against vmm-model: its model must follow the device closely enough that what
    /// it lets start is what the device then does.
    @Test("vmm-model's own model holds too: no DMA outside, whatever the guest programs")
    func theVMMModelHolds() {
        var total = Outcome()
        for seed in 0..<300 as Range<UInt64> {
            let outcome = Self.run(seed: seed, steps: 300, gated: true, vmmModel: true)
            #expect(outcome.violations.isEmpty, "seed \(seed): the device touched \(outcome.violations.prefix(3))")
            total.transmitted += outcome.transmitted; total.received += outcome.received; total.denied += outcome.denied
        }
        print("RTL8139 adversarial DMA, vmm-model: 300 programs, \(total.transmitted) transmits, \(total.received) frames received, \(total.denied) writes denied")
        #expect(total.transmitted > 1000 && total.received > 1000 && total.denied > 1000, "not vacuous")
    }

    @Test("without the check the same programs reach the forbidden range: the oracle can fail")
    func withoutTheCheckTheyGetThrough() {
        let reached = (0..<300 as Range<UInt64>).filter { !Self.run(seed: $0, steps: 300, gated: false).violations.isEmpty }
        print("RTL8139 adversarial DMA without the check: \(reached.count) of 300 programs touched the forbidden range")
        #expect(reached.count > 100, "\(reached.count) of 300 ungated programs touched the forbidden range")
    }

    /// The cooperative set is minimal: without any one of its ranges some program gets a DMA outside.
    @Test("no trapped range can be dropped", arguments: RTL8139HookSet.cooperativeWrites.indices)
    func everyHookIsNeeded(dropped: Int) {
        var hooks = RTL8139HookSet.cooperativeWrites
        hooks.remove(at: dropped)
        let reached = (0..<300 as Range<UInt64>).filter { !Self.run(seed: $0, steps: 300, gated: true, hooks: hooks).violations.isEmpty }
        #expect(!reached.isEmpty, "without \(RTL8139HookSet.cooperativeWrites[dropped]) no program got a DMA outside")
    }

    @Test func aDeniedTransmitIsVisibleAndHarmless() {
        let rig = Rig()
        let check = RTL8139DMACheck(allowed: [0x10_0000..<0x20_0000], forbidden: [0x18_0000..<0x18_1000])
        for (offset, width, value) in [(RTL8139Register.rbstart, AccessWidth.dword, UInt32(0x10_0000)),
                                       (RTL8139Register.cr, .byte, UInt32(RTL8139Command.receiveEnable | RTL8139Command.transmitEnable))] {
            #expect(check.judge(offset: offset, width: width, value: value, device: rig.nic.state) == .pass)
            rig.nic.write(region: 0, offset: offset, width: width, value: value)
        }
        #expect(check.judge(offset: RTL8139Register.tsad(0), width: .dword, value: 0x18_0800, device: rig.nic.state) == .pass)
        rig.w32(RTL8139Register.tsad(0), 0x18_0800)
        let verdict = check.judge(offset: RTL8139Register.tsd(0), width: .dword, value: 64, device: rig.nic.state)
        #expect(verdict == .deny(transmits: [.init(descriptor: 0, range: 0x18_0800..<0x18_0840)], ring: nil))
        rig.nic.abortTransmit(descriptor: 0)
        #expect(rig.sent.isEmpty && rig.r32(RTL8139Register.tsd(0)) & RTL8139TransmitStatus.aborted != 0)
        #expect(rig.r16(RTL8139Register.isr) & RTL8139Interrupt.transmitError != 0)
        // The ring: RBSTART just below the forbidden page fails once the receiver is on.
        #expect(check.judge(offset: RTL8139Register.rbstart, width: .dword, value: 0x17_F000, device: rig.nic.state)
                == .deny(transmits: [], ring: 0x17_F000..<0x18_1000))
    }
}
