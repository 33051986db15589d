import DeviceBus
import Foundation
import NE2000
import Testing

@Suite struct StateTests {
    /// A running NIC with traffic behind it: frames in the ring, a transmit done, interrupts pending.
    func busyNIC() -> (Bench, LinuxDriver) {
        let b = Bench()
        var driver = LinuxDriver(b)
        _ = driver.probe()
        driver.initialize(start: true)
        for i in 0..<5 { b.nic.receive(frame: makeFrame(to: Bench.mac, length: 100 + 300 * i, seed: UInt8(i))) }
        _ = driver.receive()
        b.nic.receive(frame: makeFrame(to: Bench.mac, length: 777))
        driver.send(makeFrame(to: [2, 0, 0, 0, 0, 1], length: 90))
        return (b, driver)
    }

    @Test func stateRoundTrips() throws {
        let (b, _) = busyNIC()
        let saved = b.nic.state
        try saved.validate()
        let other = Bench()
        try other.nic.restore(saved)
        #expect(other.nic.state == saved)
        #expect(other.line.isAsserted == b.line.isAsserted)
        #expect(other.line.isAsserted)

        let line = InterruptLine()
        let fresh = try NE2000(mac: Bench.mac, interrupt: line, transmit: { _ in }, restoring: saved)
        #expect(fresh.state == saved)
        #expect(line.isAsserted)
    }

    @Test func powerOnAndResetStatesRoundTrip() throws {
        let b = Bench()
        try NE2000State.powerOn.validate()
        let saved = b.nic.state
        try b.nic.restore(saved)
        #expect(b.nic.state == saved)
    }

    @Test func codableRoundTrip() throws {
        let (b, _) = busyNIC()
        let data = try JSONEncoder().encode(b.nic.state)
        let decoded = try JSONDecoder().decode(NE2000State.self, from: data)
        #expect(decoded == b.nic.state)
    }

    @Test func restoredDeviceContinuesIdentically() throws {
        let (a, driverA0) = busyNIC()
        var driverA = driverA0
        let b = Bench()
        try b.nic.restore(a.nic.state)
        var driverB = LinuxDriver(b)
        driverB.macAddress = driverA.macAddress
        driverB.currentPage = driverA.currentPage
        let frameA = driverA.receive()
        let frameB = driverB.receive()
        #expect(frameA.frames == frameB.frames)
        #expect(frameA.frames.count == 1)
        #expect(a.nic.state == b.nic.state)
    }

    static let corruptions: [(String, @Sendable (inout NE2000State) -> Void, NE2000StateError)] = [
        ("short SRAM", { $0.sram.removeLast() }, .wrongSize(field: "sram", expected: 16384)),
        ("long PAR", { $0.physicalAddress.append(0) }, .wrongSize(field: "physicalAddress", expected: 6)),
        ("short MAR", { $0.multicastFilter = [] }, .wrongSize(field: "multicastFilter", expected: 8)),
        ("tally", { $0.tallyCounters = [0] }, .wrongSize(field: "tallyCounters", expected: 3)),
        ("TXP latched", { $0.command |= 0x04 }, .transmitInProgress),
        ("STP but running", { $0.command = 0x21 }, .runStateContradictsCommand),
        ("STA but stopped", { $0.isRunning = false; $0.interruptStatus |= 0x80 }, .runStateContradictsCommand),
        ("RST while running", { $0.interruptStatus |= 0x80 }, .resetBitContradictsRunState),
        ("PSTART ≥ PSTOP", { $0.pageStart = 0x80 }, .receiveRingInvalid(pageStart: 0x80, pageStop: 0x80, boundary: 0x7F, currentPage: 0x52)),
        ("PSTOP past SRAM", { $0.pageStop = 0x81 }, .receiveRingInvalid(pageStart: 0x4C, pageStop: 0x81, boundary: 0x7F, currentPage: 0x52)),
        ("PSTART below SRAM", { $0.pageStart = 0x20 }, .receiveRingInvalid(pageStart: 0x20, pageStop: 0x80, boundary: 0x7F, currentPage: 0x52)),
        ("CURR outside", { $0.currentPage = 0x40 }, .receiveRingInvalid(pageStart: 0x4C, pageStop: 0x80, boundary: 0x7F, currentPage: 0x40)),
        ("BNRY outside", { $0.boundary = 0x90 }, .receiveRingInvalid(pageStart: 0x4C, pageStop: 0x80, boundary: 0x90, currentPage: 0x52)),
    ]

    @Test(arguments: corruptions.indices)
    func restoreRejectsBrokenInvariants(index: Int) throws {
        let (name, corrupt, expected) = Self.corruptions[index]
        let (b, _) = busyNIC()
        var bad = b.nic.state
        // Pin CURR/BNRY (a consistent pair) so the expected errors can name them.
        bad.boundary = 0x7F
        bad.currentPage = 0x52
        try bad.validate()
        corrupt(&bad)
        let target = Bench()
        let before = target.nic.state
        #expect(throws: expected, "\(name)") { try target.nic.restore(bad) }
        #expect(target.nic.state == before, "a rejected restore changes nothing")
        #expect(throws: expected) {
            _ = try NE2000(mac: Bench.mac, interrupt: InterruptLine(), transmit: { _ in }, restoring: bad)
        }
    }

    @Test func ringIsNotCheckedWhileStoppedOrMonitoring() throws {
        var s = NE2000State.powerOn
        s.pageStart = 0x90
        try s.validate()
        let (b, _) = busyNIC()
        var running = b.nic.state
        running.receiveConfiguration = 0x20
        running.pageStart = 0x90
        try running.validate()
    }
}
