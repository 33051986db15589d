import AgentLink
import DeviceBus
import Enforcement
import HostMonitor
import Logging
import NE2000
import NE2000Model
import PCIFunction
import Testing
import VFIOUserServer
import VPIOMonitor

/// The gate against the real NE2000, one guest access at a time, with SRAM split so that denials happen.
final class GateRig {
    let nic: NE2000
    let endpoint: PCIEndpoint
    let enforcer: Enforcer
    let ledger: GuestLedger
    var frames: [[UInt8]] = []

    init(mode: Mode, owned: Range<Int> = 0x4000..<0x6000) throws {
        let line = InterruptLine()
        var sink: (([UInt8]) -> Void)?
        nic = NE2000(mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56], interrupt: line) { sink?($0) }
        endpoint = PCIEndpoint(identity: .rtl8029, device: nic, interruptLine: line, intx: INTxRouter())
        let agent = AgentMonitor(capability: AgentCapability(endpoint: endpoint, channel: AgentChannel())) { nil }
        enforcer = Enforcer(mode: mode)
        ledger = try GuestLedger(enforced: mode, grant: BufferGrant(owned: owned), recordPath: nil, live: false)
        let gate = DMAGate(ledger: ledger, agent: agent, enforcer: enforcer, device: nic,
                           logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        endpoint.accessHook = { gate.filter($0) }
        sink = { [unowned self] in frames.append($0) }
    }

    func out(_ offset: UInt64, _ value: UInt32, _ width: AccessWidth = .byte) throws {
        try endpoint.write(region: 0, offset: offset, data: (0..<width.rawValue).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) })
    }

    func inp(_ offset: UInt64, _ width: AccessWidth = .byte) throws -> UInt32 {
        try endpoint.read(region: 0, offset: offset, count: width.rawValue).enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }

    /// NS8390_init's essentials: word mode, ring 0x46–0x60, started.
    func initialize() throws {
        for (offset, value) in [(0x00, 0x21), (0x0E, 0x49), (0x01, 0x46), (0x03, 0x46), (0x02, 0x60), (0x07, 0xFF), (0x00, 0x22)] as [(UInt64, UInt32)] {
            try out(offset, value)
        }
    }

    func remote(_ command: UInt32, address: UInt16, count: UInt16) throws {
        for (offset, value) in [(0x0A, count & 0xFF), (0x0B, count >> 8), (0x08, address & 0xFF), (0x09, address >> 8)] as [(UInt64, UInt16)] {
            try out(offset, UInt32(value))
        }
        try out(0x00, command)
    }
}

@Suite struct DMAGateTests {
    @Test(arguments: [Mode.emulated, .vmmModel, .cooperative])
    func aDeniedRemoteReadCompletesVisiblyAndHarmlessly(mode: Mode) throws {
        let rig = try GateRig(mode: mode)
        try rig.initialize()
        try rig.remote(0x12, address: 0x6000, count: 4)   // another guest's SRAM (write)
        try rig.out(0x10, 0x5A5A_5A5A, .dword)
        #expect(Array(rig.nic.state.sram[0x2000..<0x2004]) == [0, 0, 0, 0], "the write did not land")
        #expect(try rig.inp(0x07) & 0x40 != 0, "RDC: the driver sees its DMA complete")
        try rig.out(0x07, 0x40)
        try rig.remote(0x0A, address: 0x6000, count: 4)
        #expect(try rig.inp(0x10, .dword) == 0xFFFF_FFFF, "a denied read gives the filler")
        #expect(try rig.inp(0x07) & 0x40 != 0)
        #expect(try rig.inp(0x00) == 0x0A, "CR reads back what the guest wrote")
        #expect(rig.enforcer.report.denied >= 2)
    }

    @Test func aDeniedTransmitAbortsWithTXE() throws {
        let rig = try GateRig(mode: .emulated)
        try rig.initialize()
        for (offset, value) in [(0x04, 0x60), (0x05, 60), (0x06, 0)] as [(UInt64, UInt32)] { try rig.out(offset, value) }
        try rig.out(0x00, 0x26)
        #expect(rig.frames.isEmpty)
        #expect(try rig.inp(0x07) & 0x08 != 0, "TXE")
        #expect(try rig.inp(0x04) & 0x08 != 0, "TSR.ABT")
    }

    @Test func anAllowedTransmitIsSent() throws {
        let rig = try GateRig(mode: .cooperative, owned: 0x4000..<0x8000)
        try rig.initialize()
        for (offset, value) in [(0x04, 0x40), (0x05, 60), (0x06, 0)] as [(UInt64, UInt32)] { try rig.out(offset, value) }
        try rig.out(0x00, 0x26)
        #expect(rig.frames.count == 1 && rig.frames.first?.count == 60)
        #expect(try rig.inp(0x07) & 0x02 != 0, "PTX")
    }

    /// RD = remote write and TXP in one write: two starts, both judged, the remote one still running.
    @Test func aCommandWithRDAndTXPIsJudgedAsBoth() throws {
        let rig = try GateRig(mode: .emulated, owned: 0x4000..<0x8000)
        try rig.initialize()
        for (offset, value) in [(0x04, 0x40), (0x05, 60), (0x06, 0)] as [(UInt64, UInt32)] { try rig.out(offset, value) }
        try rig.remote(0x16, address: 0x4100, count: 4)
        #expect(rig.enforcer.report.dmaStarts == 2)
        #expect(rig.frames.count == 1)
        try rig.out(0x10, 0x0403_0201, .dword)
        #expect(Array(rig.nic.state.sram[0x100..<0x104]) == [1, 2, 3, 4])
    }

    /// The probe a memory-sizing driver makes: outside SRAM, harmless, allowed and counted.
    @Test func aRemoteWriteOutsideSRAMIsAllowedAsAnAnomaly() throws {
        let rig = try GateRig(mode: .vmmModel)
        try rig.initialize()
        try rig.remote(0x12, address: 0x2000, count: 4)
        try rig.out(0x10, 0x1234_5678, .dword)
        #expect(try rig.inp(0x07) & 0x40 != 0)
        #expect(rig.enforcer.report.denied == 0 && rig.enforcer.report.anomalies == 1)
    }

    /// The host's page switches are invisible: CR reads back what the guest left, on every page.
    @Test func theHostsRegisterReadsLeaveCRAsTheGuestLeftIt() throws {
        let rig = try GateRig(mode: .cooperative, owned: 0x4000..<0x8000)
        try rig.initialize()
        try rig.out(0x00, 0x62)  // page 1, as the driver leaves it while writing PAR
        try rig.out(0x00, 0x4A)  // a remote read on page 1
        #expect(try rig.inp(0x00) == 0x4A)
        #expect(rig.enforcer.report.dmaStarts == 1)
    }

    /// An `inl` at 0x16 covers the reset port: vmm-model's bitmap traps reset-port reads.
    @Test func aWideAccessTrapsWhenAnyPortItCoversIsTrapped() throws {
        let rig = try GateRig(mode: .vmmModel)
        _ = try rig.inp(0x16, .dword)
        _ = try rig.inp(0x14, .dword)
        #expect(rig.ledger.monitors.monitor(.vmmModel).counters.exits == 1)
        try rig.out(0x00, 0x0A, .word)
        #expect(rig.ledger.wideAccessesIgnored == 1, "a word over CR is dropped by the device, and counted")
        let cooperative = rig.ledger.monitors.monitor(.cooperative).counters
        #expect(cooperative.exits == 1 && cooperative.actedOn == 0, "CR trapped by port; 0x0A starts nothing")
    }
}
