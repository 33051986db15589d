import AgentLink
import DeviceBus
import Logging
import NE2000
import PCIFunction
import VFIOUserServer
import RTL8139
import RTL8139Model
import Testing
import VPIOProtocol
@testable import HostMonitor

/// The host's cross-check of the RTL8139 agent, fed as the gate feeds it: every access counted, every
/// write verified before it reaches a device whose registers are `device`. The agent's side is played
/// here: its probe counts the access and writes the intents before the write is served.
final class IntentCheckRig {
    let memory = RingMemory()
    let endpoint: PCIEndpoint
    let check: RTL8139IntentCheck
    var device = RTL8139State()
    static let everything = RTL8139DMACheck(allowed: [0..<UInt64.max])

    init() throws {
        // The capability lives in config space: any endpoint carries it.
        let line = InterruptLine()
        endpoint = PCIEndpoint(identity: .rtl8029, device: NE2000(mac: [0x52, 0x54, 0, 1, 2, 3], interrupt: line, transmit: { _ in }),
                               interruptLine: line, intx: INTxRouter())
        let capability = AgentCapability(endpoint: endpoint, channel: AgentChannel())
        let memory = self.memory
        check = RTL8139IntentCheck(agent: AgentMonitor(capability: capability) { memory },
                                   logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        endpoint.configWritten = { capability.configWritten(offset: $0, count: $1, memory: memory) }
        for (i, page) in memory.pages.enumerated() {
            try endpoint.write(region: 7, offset: UInt64(VPIOCapability.offset + VPIOCapability.Field.pages + 8 * i),
                               data: (0..<8).map { UInt8(truncatingIfNeeded: page >> (8 * UInt64($0))) })
        }
        try endpoint.write(region: 7, offset: UInt64(VPIOCapability.offset + VPIOCapability.Field.pageCount), data: [UInt8(VPIORing.pages), 0, 0, 0])
        try endpoint.write(region: 7, offset: UInt64(VPIOCapability.offset + VPIOCapability.Field.command), data: [1, 0, 0, 0])
    }

    /// A write the guest makes: `seen` if the agent's probe saw it, `announced` the intents it wrote first.
    func write(_ offset: UInt64, _ value: UInt32, _ width: AccessWidth = .dword, seen: Bool = true,
               announced: [(IntentKind, UInt8, UInt32, UInt32)] = []) {
        if seen { memory.header.accessesSeen &+= 1 }
        for (kind, command, start, count) in announced {
            memory.produce(.dmaIntent(kind: kind, command: command, start: start, count: count,
                                      intentIndex: memory.header.intentsWritten, accessIndex: memory.header.accessesSeen))
            memory.header.intentsWritten &+= 1
        }
        let access = BusAccess(direction: .write, region: 0, offset: offset, width: width, value: value)
        check.count(access)
        check.verify(access, device: device, check: Self.everything)
        let started = Self.everything.examine(offset: offset, width: width, value: value, device: device).transmits
        device.applySteeringWrite(offset: offset, width: width, value: value)
        for index in started { device.tsd[index] |= RTL8139TransmitStatus.own }  // the device sends it within the write
    }

    /// The driver's open: reset, TSAD0, RBSTART, then RE and TE (the ring is checked then).
    func open() {
        write(RTL8139Register.cr, UInt32(RTL8139Command.reset), .byte)
        write(RTL8139Register.tsad, 0x1000)
        write(RTL8139Register.rbstart, 0x8000)
        write(RTL8139Register.cr, UInt32(RTL8139Command.receiveEnable | RTL8139Command.transmitEnable), .byte,
              announced: [(.receiveRing, UInt8(RTL8139Register.cr), 0x8000, 8192)])
    }

    var fallbackBit: Bool {
        (try? endpoint.read(region: 7, offset: UInt64(VPIOCapability.offset + VPIOCapability.Field.status), count: 1))
            .map { $0[0] & UInt8(VPIOCapability.Status.fallback.rawValue) != 0 } ?? false
    }
}

@Suite struct RTL8139IntentCheckTests {
    @Test func anHonestAgentsIntentsAllMatch() throws {
        let rig = try IntentCheckRig()
        rig.open()
        rig.write(RTL8139Register.tsd, 60, announced: [(.busTransmit, 0, 0x1000, 60)])
        rig.write(RTL8139Register.isr, 0xFFFF, .word)
        rig.write(RTL8139Register.tsd, 1514, announced: [(.busTransmit, 0, 0x1000, 1514)])
        let c = rig.check.counters
        #expect(c.starts == 3 && c.intents.hits == 3 && c.findings == 0 && c.accessCountMismatches == 0, "\(c)")
        #expect(!rig.fallbackBit)
    }

    /// An intent with another buffer than the device's TSAD: found, reported once, the fallback bit set.
    @Test func aLyingIntentIsFound() throws {
        let rig = try IntentCheckRig()
        rig.open()
        rig.write(RTL8139Register.tsd, 60, announced: [(.busTransmit, 0, 0x2000, 60)])
        let c = rig.check.counters
        #expect(c.intents.mismatches == 1 && c.findings == 1, "\(c)")
        #expect(c.firstFinding?.hasPrefix("TSD0: expected bus-transmit, ring says bus-transmit at 0x2000") == true, "\(c.firstFinding ?? "")")
        #expect(rig.fallbackBit)
    }

    /// Root writes past the driver: the probes did not see the access and nothing was announced.
    @Test func aStartTheAgentDidNotSeeIsFound() throws {
        let rig = try IntentCheckRig()
        rig.open()
        rig.write(RTL8139Register.tsd, 60, seen: false)
        let c = rig.check.counters
        #expect(c.intents.misses == 1 && c.findings == 1 && c.firstFinding?.contains("no intent #1") == true, "\(c)")
        rig.write(RTL8139Register.tsd, 60, announced: [(.busTransmit, 0, 0x1000, 60)])
        #expect(rig.check.counters.accessCountMismatches >= 1, "the agent saw one access fewer than the host served")
        #expect(rig.fallbackBit)
    }

    /// Writes that start nothing are not checked; a descriptor written while TE is off is, when TE is set.
    @Test func onlyStartsAreChecked() throws {
        let rig = try IntentCheckRig()
        rig.write(RTL8139Register.tsad, 0x1000)
        rig.write(RTL8139Register.imr, 0xFFFF, .word)
        rig.write(RTL8139Register.tsd, 60)  // TE is off: the descriptor waits
        #expect(rig.check.counters.starts == 0)
        rig.write(RTL8139Register.cr, UInt32(RTL8139Command.transmitEnable), .byte, announced: [(.busTransmit, 0, 0x1000, 60)])
        #expect(rig.check.counters.starts == 1 && rig.check.counters.intents.hits == 1, "TE sets the waiting descriptor going")
    }
}
