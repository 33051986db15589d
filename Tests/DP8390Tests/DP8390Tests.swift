import DeviceBus
import DP8390
import Foundation
import Testing

@Suite struct DP8390Tests {
    /// The BPF program's header is this module's rendering: a stale copy is a second definition.
    @Test func theCommittedCHeaderIsTheGeneratedOne() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../guest-agent/bpf/dp8390.h").standardized
        let committed = try String(contentsOf: path, encoding: .utf8)
        #expect(committed == DP8390CHeader.render(), "regenerate with: vpio dp8390-header > guest-agent/bpf/dp8390.h")
    }

    @Test func theCRRuleStopWinsStartStartsNeitherKeepsAndTXPNeedsARunningNIC() {
        #expect(!CommandEffect(command: 0x03, wasRunning: true).runningAfter)
        #expect(CommandEffect(command: 0x22, wasRunning: false).runningAfter)
        #expect(CommandEffect(command: 0x20, wasRunning: true).runningAfter)
        #expect(!CommandEffect(command: 0x20, wasRunning: false).runningAfter)
        #expect(CommandEffect(command: 0x24, wasRunning: true).startsTransmit)
        #expect(!CommandEffect(command: 0x24, wasRunning: false).startsTransmit)
        #expect(CommandEffect(command: 0x26, wasRunning: false).startsTransmit)
        #expect(!CommandEffect(command: 0x25, wasRunning: true).startsTransmit)
        let both = CommandEffect(command: 0x16, wasRunning: true)
        #expect(both.startsRemote == .remoteWrite && both.startsTransmit)
        #expect(CommandEffect(command: 0x0A, wasRunning: true).startsRemote == .remoteRead)
        #expect(CommandEffect(command: 0x1A, wasRunning: true).startsRemote == nil)  // send packet
        #expect(CommandEffect(command: 0x2A, wasRunning: true).remote == .abort)
        #expect(CommandEffect(command: 0x02, wasRunning: true).remote == .none)
        #expect(!CommandEffect(command: 0x02, wasRunning: true).endsRemote)
        #expect(CommandEffect(command: 0xC2, wasRunning: true).page == 3)
    }

    @Test func theTableEncodesTheRuleForEveryValueAndRunState() {
        for index in 0..<512 {
            let value = UInt8(index & 0xFF), running = index >= 256
            let entry = DP8390CHeader.entry(command: value, wasRunning: running)
            let effect = CommandEffect(command: value, wasRunning: running)
            #expect(entry & DP8390CHeader.EntryBit.remoteMask == effect.remote.rawValue)
            #expect((entry & DP8390CHeader.EntryBit.startsTransmit != 0) == effect.startsTransmit)
            #expect((entry & DP8390CHeader.EntryBit.runningAfter != 0) == effect.runningAfter)
        }
    }

    @Test func bar0DecodesByFirstPortAndReportsEveryCoveredPort() {
        #expect(BAR0.decode(offset: 0x00, width: .byte) == .register(0))
        #expect(BAR0.decode(offset: 0x00, width: .word) == .ignored)
        #expect(BAR0.decode(offset: 0x16, width: .dword) == .dataPort)
        #expect(BAR0.decode(offset: 0x1E, width: .dword) == .ignored)
        #expect(BAR0.decode(offset: UInt64.max, width: .word) == .ignored)
        #expect(BAR0.ports(offset: 0x16, width: .dword) == 0x16..<0x1A)
        #expect(BAR0.ports(offset: 0x1E, width: .dword) == 0x1E..<0x20)
        #expect(BAR0.ports(offset: 0x40, width: .byte).isEmpty)
    }

    @Test func theRemoteAddressWrapsInAValidRingAndAt16Bits() {
        #expect(RemoteAddress.next(after: 0x7FFF, ringStart: 0x46, ringStop: 0x80) == 0x4600)
        #expect(RemoteAddress.next(after: 0x7FFF, ringStart: 0x80, ringStop: 0x46) == 0x8000)
        #expect(RemoteAddress.next(after: 0xFFFF, ringStart: 0, ringStop: 0) == 0)
        #expect(RemoteAddress.bytesPerAccess(.byte, dataConfiguration: DCR.wordTransfer) == 2)
        #expect(RemoteAddress.bytesPerAccess(.word, dataConfiguration: 0) == 1)
        #expect(RemoteAddress.bytesPerAccess(.dword, dataConfiguration: 0) == 4)
    }
}
