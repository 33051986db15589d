import SeededRandom
import DeviceBus
import NE2000
import Testing

/// Random guest accesses and random frames: nothing traps, and what the model promises keeps holding.
@Suite struct FuzzTests {
    static let mac = Bench.mac

    func randomFrame(_ rng: inout SplitMix64, par: [UInt8]) -> [UInt8] {
        let length = Int.random(in: 0...1600, using: &rng)
        let destination: [UInt8]
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: destination = par
        case 1: destination = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        case 2: destination = [0x01, 0x00, 0x5E, 0, 0, UInt8.random(in: 0...255, using: &rng)]
        default: destination = (0..<6).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        return Array((destination + (0..<max(0, length - 6)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            .prefix(length))
    }

    func randomAccess(_ b: Bench, _ rng: inout SplitMix64) {
        let region: UInt32 = Int.random(in: 0..<20, using: &rng) == 0 ? UInt32.random(in: 0...8, using: &rng) : 0
        let offset: UInt64 = Int.random(in: 0..<30, using: &rng) == 0
            ? UInt64.random(in: 0...UInt64.max, using: &rng)
            : UInt64.random(in: 0..<0x22, using: &rng)
        let width = AccessWidth.allCases.randomElement(using: &rng)!
        if Int.random(in: 0..<3, using: &rng) != 0 {
            let value = b.nic.read(region: region, offset: offset, width: width)
            #expect(value & ~width.mask == 0)
        } else {
            // Bias towards values that keep the NIC running with a sane ring now and then.
            let value = Int.random(in: 0..<4, using: &rng) == 0
                ? UInt32([0x22, 0x4C, 0x80, 0x7F, 0x49, 0x0A, 0x12, 0x26, 0x62].randomElement(using: &rng)!)
                : UInt32.random(in: 0...UInt32.max, using: &rng)
            b.nic.write(region: region, offset: offset, width: width, value: value)
        }
    }

    func checkInvariants(_ b: Bench) throws {
        let s = b.nic.state
        #expect(b.line.isAsserted == (s.interruptStatus & s.interruptMask & 0x7F != 0))
        #expect(s.sram.count == 16384)
        #expect(s.command & 0x04 == 0)
        #expect((s.interruptStatus & 0x80 != 0) == !s.isRunning)
        do {
            try s.validate()
            let clone = Bench()
            try clone.nic.restore(s)
            #expect(clone.nic.state == s)
        } catch {
            // The one refusal the model allows: a running receiver over a ring the guest broke.
            guard case .receiveRingInvalid = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(s.isRunning && s.receiveConfiguration & 0x20 == 0)
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func randomAccessesAndFrames(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let b = Bench()
        var driver = LinuxDriver(b)
        driver.macAddress = Self.mac
        for step in 0..<4000 {
            switch Int.random(in: 0..<100, using: &rng) {
            case 0, 1:
                driver.initialize(start: true)
            case 2:
                b.nic.reset()
            case 3..<45:
                let state = b.nic.state
                let canReceive = b.nic.canReceiveFrame
                let frame = randomFrame(&rng, par: state.physicalAddress)
                let dropsBefore = b.nic.counters.framesDroppedNoRoom
                let accepted = b.nic.receive(frame: frame)
                let after = b.nic.state
                if canReceive && frame.count <= 1518 {
                    #expect(b.nic.counters.framesDroppedNoRoom == dropsBefore, "canReceiveFrame promised room")
                }
                if accepted {
                    // Only ring pages changed.
                    let ringStart = Int(state.pageStart) * 256 - 0x4000
                    let ringEnd = Int(state.pageStop) * 256 - 0x4000
                    #expect(after.sram[..<ringStart] == state.sram[..<ringStart])
                    #expect(after.sram[ringEnd...] == state.sram[ringEnd...])
                } else {
                    #expect(after.sram == state.sram)
                }
            case 45..<47:
                if b.nic.state.isRunning { _ = driver.receive() }
            case 47..<50:
                if b.nic.state.isRunning { driver.send(randomFrame(&rng, par: Self.mac)) }
            default:
                randomAccess(b, &rng)
            }
            if step % 7 == 0 { try checkInvariants(b) }
        }
        try checkInvariants(b)
        #expect(b.nic.counters.framesReceived > 0)
    }

    /// The back-pressure promise: a backend that offers a frame only while `canReceiveFrame` never loses
    /// one, and the driver reads every frame back intact and in order, whatever the sizes.
    @Test(arguments: [UInt64(11), 12, 13])
    func backPressureNeverLosesFrames(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let b = Bench()
        var driver = LinuxDriver(b)
        _ = driver.probe()
        driver.initialize(start: true)
        var offered: [[UInt8]] = []
        var drained: [[UInt8]] = []
        var waits = 0
        for i in 0..<3000 {
            if b.nic.canReceiveFrame && Int.random(in: 0..<4, using: &rng) != 0 {
                // At least a destination address, or padding would change where the frame is going.
                let length = Int.random(in: 6...1518, using: &rng)
                let frame = makeFrame(to: Bench.mac, length: length, seed: UInt8(truncatingIfNeeded: i))
                #expect(b.nic.receive(frame: frame))
                offered.append(frame.count < 60 ? frame + [UInt8](repeating: 0, count: 60 - frame.count) : frame)
            } else {
                if !b.nic.canReceiveFrame { waits += 1 }
                let (frames, errors) = driver.receive()
                #expect(errors == 0)
                drained += frames
            }
        }
        while true {
            let (frames, _) = driver.receive()
            if frames.isEmpty { break }
            drained += frames
        }
        #expect(drained.count == offered.count)
        let intact = drained == offered
        #expect(intact)
        #expect(b.nic.counters.framesDroppedNoRoom == 0)
        #expect(waits > 0, "the ring did fill up")
    }
}
