import AccessTrace
import DeviceBus
import DeviceSharing
import DP8390
import Foundation
import NE2000Model
import Testing

/// Switch point A rests on how drivers program the NE2000: every remote DMA and every transmit starts
/// with values written since the last switch point — RSAR and RBCR for a remote DMA, TBCR for a
/// transmit — so what a switch does to those registers can never reach a DMA. (Values written and never
/// used, as the RBCR = 0 of Linux's init, are dead.) Checked on every recorded trace of both drivers.
@Suite struct SwitchPointTests {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let traces = [
        "QEMUDeviceTests/Traces/linux-download-ssh.vptrace", "QEMUDeviceTests/Traces/ipxe-download.vptrace",
        "VPIOMonitorTests/Fixtures/boot-download-64k.vptrace", "VPIOMonitorTests/Fixtures/boot-ssh.vptrace",
    ]

    /// Each DMA start that uses a write-only register not written since the last switch point.
    static func startsUsingValuesFromBeforeASwitchPoint(_ events: [DeviceEvent]) -> (switchPoints: Int, starts: Int, violations: [String]) {
        var model = FullModel()
        var fresh: Set<UInt8> = []
        var switchPoints = 0, starts = 0, violations: [String] = []
        for (index, event) in events.enumerated() {
            defer { model.apply(event) }
            guard case let .access(a) = event, a.direction == .write, case let .register(offset) = a.port else { continue }
            guard offset == CR.offset else {
                if model.state.page == 0 { fresh.insert(offset) }
                continue
            }
            let value = UInt8(truncatingIfNeeded: a.value)
            let effect = CommandEffect(command: value, wasRunning: model.state.started)
            var used: Set<UInt8> = effect.startsRemote != nil ? [0x08, 0x09, 0x0A, 0x0B] : []
            if effect.startsTransmit { used.formUnion([0x05, 0x06]) }
            if !used.isEmpty {
                starts += 1
                let stale = used.subtracting(fresh)
                if !stale.isEmpty { violations.append("event \(index): CR=0x\(String(value, radix: 16)) uses \(stale.sorted()) from before the last switch point") }
            }
            if SwitchPoint.isSwitchPoint(command: value) {
                switchPoints += 1
                fresh.removeAll()
            }
        }
        return (switchPoints, starts, violations)
    }

    @Test(arguments: traces)
    func everyStartUsesOnlyValuesWrittenSinceTheLastSwitchPoint(trace: String) throws {
        let events = try TraceDecoder.decode(Array(Data(contentsOf: Self.tests.appendingPathComponent(trace))))
        let (switchPoints, starts, violations) = Self.startsUsingValuesFromBeforeASwitchPoint(events)
        print("\(trace): \(switchPoints) switch points, \(starts) DMA and transmit starts, \(violations.count) using values from before one")
        #expect(switchPoints > 100 && starts > 40, "\(trace): \(switchPoints) switch points, \(starts) starts")
        #expect(violations.isEmpty, "\(trace): \(violations.count) violations, first \(violations.prefix(3))")
    }

    /// Not vacuous: a driver that programs RSAR and RBCR, switches pages with RD = 100, then starts is caught.
    @Test func aStartAcrossASwitchPointIsFound() {
        let program: [DeviceEvent] = [0x08, 0x09, 0x0A, 0x0B].map { .access(.write($0, 0)) }
        let events: [DeviceEvent] = [.access(.write(0x00, 0x22))] + program + [.access(.write(0x00, 0x62)), .access(.write(0x00, 0x22)),
                                     .access(.write(0x00, 0x0A))]
        #expect(Self.startsUsingValuesFromBeforeASwitchPoint(events).violations.count == 1)
        let fine: [DeviceEvent] = [.access(.write(0x00, 0x22))] + program + [.access(.write(0x00, 0x0A))]
        #expect(Self.startsUsingValuesFromBeforeASwitchPoint(fine).violations.isEmpty)
    }

    @Test func switchPoints() {
        #expect(SwitchPoint.isSwitchPoint(command: 0x22) && SwitchPoint.isSwitchPoint(command: 0x21) && SwitchPoint.isSwitchPoint(command: 0x62))
        #expect(!SwitchPoint.isSwitchPoint(command: 0x26), "a transmit")
        #expect(!SwitchPoint.isSwitchPoint(command: 0x0A) && !SwitchPoint.isSwitchPoint(command: 0x12), "remote starts")
        #expect(!SwitchPoint.isSwitchPoint(command: 0x02), "RD = 000 ends nothing")
    }
}

@Suite struct PerGuestFileTests {
    @Test func theGuestsNameGoesBeforeTheExtension() {
        #expect(PerGuestFile.path("/tmp/run/ledger.json", guest: "g1") == "/tmp/run/ledger-g1.json")
        #expect(PerGuestFile.path("/tmp/run.d/trace", guest: "a") == "/tmp/run.d/trace-a")
        #expect(PerGuestFile.path("trace.v2.vptrace", guest: "b") == "trace.v2-b.vptrace")
    }
}
