import DeviceBus
import DeviceSharing
import DP8390
import NE2000
import Testing

/// The switcher on our NE2000 with scripted drivers and a clock the test turns.
@Suite struct DeviceSwitcherTests {
    static let macs: [[UInt8]] = (0..<3).map { [0x52, 0x54, 0x00, 0x12, 0x34, 0x56 + UInt8($0)] }
    let bench = Bench(ours: DeviceSwitcherTests.macs[0])
    let t0 = ContinuousClock.now
    var window: RegisterWindow { RegisterWindow(device: bench.device) }

    func switcher(guests: Int = 2, quantumAccesses: Int = 0) -> DeviceSwitcher {
        var policy = SharingPolicy()
        policy.quantumAccesses = quantumAccesses
        return DeviceSwitcher(device: bench.device, layout: bench.layout, guests: guests, policy: policy, now: t0)
    }

    func at(_ ms: Int) -> ContinuousClock.Instant { t0 + .milliseconds(ms) }

    /// The owner's driver writes CR (after the switcher admitted it); returns whether it was switched out there.
    func command(_ s: DeviceSwitcher, _ guest: Int, _ value: UInt8, at ms: Int) -> Bool {
        #expect(s.request(guest, at: at(ms)) == .proceed)
        bench.device.write(region: 0, offset: 0, width: .byte, value: UInt32(value))
        return s.commandWritten(guest, value: value, window: window, at: at(ms))
    }

    @Test func theOwnerIsSwitchedOutAtItsNextSwitchPointWhileAnotherWaits() {
        let s = switcher()
        #expect(s.request(0, at: at(0)) == .proceed)
        #expect(s.owner == 0)
        Driver(device: bench.device, mac: Self.macs[0]).open()
        #expect(s.request(1, at: at(1)) == .hold)
        #expect(!command(s, 0, 0x0A, at: 2), "a remote start (of 0 bytes: RDC at once) is no switch point")
        #expect(!command(s, 0, 0x22, at: 2), "RDC not yet acknowledged: \(s.refused)")
        bench.device.write(region: 0, offset: 0x07, width: .byte, value: 0x40)
        #expect(command(s, 0, 0x22, at: 3), "RD = 100 with RDC acknowledged: switched out here")
        #expect(s.owner == 1)
        #expect(s.request(1, at: at(3)) == .proceed)
        #expect(s.request(0, at: at(4)) == .hold, "the guest switched out waits in turn")
        let record = s.switches.last!
        #expect(record.reason == .switchPoint && record.from == 0 && record.to == 1 && record.evidence?.reusable == true)
        #expect(record.accesses > 2 * bench.layout.sram.count / 4, "saved and restored all buffer memory: \(record.accesses)")
        #expect(s.holdTimes(of: 1) == [.milliseconds(2)])
    }

    @Test func theQuantumKeepsTheOwnerUntilItIsUsed() {
        let s = switcher(quantumAccesses: 5)
        #expect(s.request(0, at: at(0)) == .proceed)
        #expect(s.request(1, at: at(0)) == .hold)
        #expect(!command(s, 0, 0x22, at: 1), "2 accesses of 5")
        #expect(!command(s, 0, 0x22, at: 1))
        #expect(!command(s, 0, 0x22, at: 1))
        #expect(command(s, 0, 0x22, at: 1), "the 5th access")
        // ...or its time.
        #expect(!command(s, 1, 0x22, at: 2) && s.request(0, at: at(2)) == .hold)
        #expect(command(s, 1, 0x22, at: 2 + 20))
    }

    /// The refusal the switch's check exists for: an interrupt pending on the owner's device.
    @Test func aPendingInterruptRefusesTheSwitchUntilTheHoldBoundForcesIt() {
        let s = switcher()
        #expect(s.request(0, at: at(0)) == .proceed)
        Driver(device: bench.device, mac: Self.macs[0]).open()
        bench.device.receive(frame: frame(to: Self.macs[0], length: 100, tag: 1))
        #expect(bench.line.isAsserted)
        #expect(s.request(1, at: at(1)) == .hold)
        #expect(!command(s, 0, 0x22, at: 2), "not reusable: no switch")
        #expect(s.owner == 0)
        #expect(s.refused.keys.contains { $0.hasPrefix("interrupt pending") }, "\(s.refused)")
        #expect(s.tick(window: window, at: at(500)) == nil, "held 499 ms, owner busy a moment ago")
        #expect(s.tick(window: window, at: at(1001)) == 1, "the hold bound")
        let record = s.switches.last!
        #expect(record.reason == .forced && record.evidence?.reusable == false)
        #expect(!bench.line.isAsserted, "guest 1's context has nothing pending")
    }

    @Test func aQuietOwnerIsSwitchedOutWithoutASwitchPoint() {
        let s = switcher()
        #expect(command(s, 0, 0x21, at: 0) == false)
        #expect(s.request(1, at: at(5)) == .hold)
        #expect(s.tick(window: window, at: at(15)) == nil, "10 ms quiet")
        #expect(s.tick(window: window, at: at(25)) == 1)
        #expect(s.switches.last?.reason == .quiet)
    }

    @Test func anOpenRemoteDMAIsNotReusable() {
        let s = switcher()
        Driver(device: bench.device, mac: Self.macs[0]).open()
        #expect(command(s, 0, 0x22, at: 0) == false)
        for (o, v): (UInt8, UInt8) in [(0x0A, 8), (0x0B, 0), (0x08, 0), (0x09, 0x46)] {
            bench.device.write(region: 0, offset: UInt64(o), width: .byte, value: UInt32(v))
        }
        #expect(command(s, 0, 0x0A, at: 1) == false)
        _ = bench.device.read(region: 0, offset: 0x10, width: .word)
        #expect(s.request(1, at: at(2)) == .hold)
        #expect(s.tick(window: window, at: at(30)) == nil)
        #expect(s.refused["remote DMA open"] == 1, "\(s.refused)")
    }

    /// Round robin over those that want the device; one with nothing to do is not switched in.
    @Test func roundRobinSkipsGuestsWithNothingToDo() {
        let s = switcher(guests: 3)
        #expect(s.request(0, at: at(0)) == .proceed)
        s.wants(2, at: at(1))
        #expect(command(s, 0, 0x22, at: 2))
        #expect(s.owner == 2, "guest 1 wanted nothing")
        #expect(s.request(1, at: at(3)) == .hold)
        #expect(s.request(0, at: at(3)) == .hold)
        #expect(command(s, 2, 0x22, at: 4) && s.owner == 0, "after 2 comes 0, then 1")
        #expect(command(s, 0, 0x22, at: 5) && s.owner == 1)
    }

    /// Two guests take turns on one device, each receiving its own frames and never the other's.
    @Test func twoGuestsEachSeeOnlyTheirOwnFrames() {
        let s = switcher()
        let drivers = (0..<2).map { Driver(device: bench.device, mac: Self.macs[$0]) }
        var received: [[[UInt8]]] = [[], []]
        for round in 0..<6 {
            let guest = round % 2, other = 1 - guest
            #expect(s.request(guest, at: at(round * 10)) == .proceed || s.owner == guest)
            if round < 2 { drivers[guest].open() }
            bench.device.receive(frame: frame(to: Self.macs[guest], length: 80 + round, tag: UInt8(round)))
            received[guest] += drivers[guest].takeFrames()
            #expect(s.request(other, at: at(round * 10 + 1)) == .hold)
            #expect(command(s, guest, 0x22, at: round * 10 + 2), "round \(round): \(s.refused)")
        }
        for guest in 0..<2 {
            #expect(received[guest].map { $0[5] } == [Self.macs[guest][5], Self.macs[guest][5], Self.macs[guest][5]])
            #expect(received[guest].map(\.count) == (0..<6).filter { $0 % 2 == guest }.map { 80 + $0 })
        }
    }
}
