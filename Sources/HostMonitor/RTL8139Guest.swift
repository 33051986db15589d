import AgentLink
import DeviceBus
import Foundation
import Logging
import PCIFunction
import RTL8139
import RTL8139Model
import VFIOUserServer
import VPIOMonitor

/// One guest's RTL8139 as vpio-host serves it: the NIC a bus master on the server's DMA map table
/// (reachable only while the guest enables bus mastering), the PCI endpoint and vfio-user server, the
/// agent's capability (whose ring the device must not reach), and the gate that puts every access
/// through each mode's monitor and the enforced mode's DMA check before the device acts on it.
public final class RTL8139Guest {
    public let nic: RTL8139
    public let memory: BusMasterMemory
    public let endpoint: PCIEndpoint
    public let server: VFIOUserServer
    public let agent: AgentMonitor
    /// Every access, and every frame from the wire, goes through here.
    public let gate: RTL8139Gate

    public init(mode: Mode, mac: [UInt8], logger: Logger, transmit: @escaping FrameSink) {
        let table = DMAMapTable(maxEntries: ServerLimits().maxDMAMaps)
        memory = BusMasterMemory(table: table)
        let intx = INTxRouter()
        let edges = EdgeCount()
        let line = InterruptLine {
            intx.lineChanged($0)
            edges.count += 1
        }
        nic = RTL8139(mac: mac, memory: memory, interrupt: line, transmit: transmit)
        endpoint = PCIEndpoint(identity: .rtl8139, device: nic, interruptLine: line, intx: intx, busMaster: memory)
        server = VFIOUserServer(endpoint: endpoint, dma: table, logger: logger)
        agent = GuestWiring.agentMonitor(endpoint: endpoint, server: server)
        let gate = RTL8139Gate(nic: nic, monitors: RTL8139Monitors(enforced: mode), memory: table, ring: agent.channel,
                               intents: RTL8139IntentCheck(agent: agent, logger: logger), edges: edges, logger: logger)
        agent.capability.setEnforcedMode(DMAGate.statusCode(mode))
        self.gate = gate
        endpoint.accessHook = { gate.filter($0) }
        endpoint.resetObserver = { gate.reset() }
    }
}

/// Interrupt-line edges, counted where the line is made and read by the gate's ledger.
public final class EdgeCount {
    public var count = 0
}

/// Puts each BAR access through every mode's monitor (and each DMA start past the agent's intents) and
/// carries out the enforced mode's verdict: a denied write never reaches the device, and the transmits
/// it would have started end aborted (the guest's driver sees TABT in TSD and TER in ISR, as for a buffer
/// the device could not read); a denied ring setup leaves the receiver on the ring it had. A frame from
/// the wire is stored only while the ring lies in what the enforced mode permits now (the agent may have
/// registered its ring over it since).
public final class RTL8139Gate: FrameReceiver {
    let nic: RTL8139
    public private(set) var monitors: RTL8139Monitors
    let memory: DMAMapTable
    let ring: AgentChannel
    public let intents: RTL8139IntentCheck
    let edges: EdgeCount
    let logger: Logger
    /// Frames not stored because the ring was not permitted when they arrived.
    public private(set) var receivesDenied = 0

    init(nic: RTL8139, monitors: RTL8139Monitors, memory: DMAMapTable, ring: AgentChannel, intents: RTL8139IntentCheck,
         edges: EdgeCount, logger: Logger) {
        self.nic = nic
        self.monitors = monitors
        self.memory = memory
        self.ring = ring
        self.intents = intents
        self.edges = edges
        self.logger = logger
    }

    /// The check as things stand: the guest's memory is what its VMM mapped for DMA; the agent's ring
    /// pages are not the device's to reach.
    public var check: RTL8139DMACheck {
        RTL8139DMACheck(allowed: memory.entries.filter { $0.flags.contains(.readable) }.map { $0.address..<$0.address + $0.size },
                        forbidden: ring.pages.map { $0..<$0 + 4096 })
    }

    /// PCIEndpoint's access hook: the value the device gets, or nil when the write is absorbed.
    func filter(_ access: BusAccess) -> UInt32? {
        intents.count(access)
        guard access.direction == .write else {
            monitors.read(access)
            return nil
        }
        let check = self.check
        intents.verify(access, device: nic.state, check: check)
        let verdict = monitors.write(access, device: nic.state, check: check)
        guard case let .deny(transmits, ringRange) = verdict else {
            monitors.settle(access, delivered: true, aborted: [])
            return access.value
        }
        for denied in transmits { nic.abortTransmit(descriptor: denied.descriptor) }
        monitors.settle(access, delivered: false, aborted: transmits.map(\.descriptor))
        intents.agent.capability.recordViolation()
        logDenial(access, transmits: transmits, ring: ringRange)
        return nil
    }

    private func logDenial(_ access: BusAccess, transmits: [RTL8139DMACheck.TransmitDenial], ring: Range<UInt64>?) {
        let level: Logger.Level = monitors.enforcedMonitor.counters.denials <= 100 ? .warning : .debug
        logger.log(level: level, "DMA denied", metadata: [
            "write": "0x\(String(access.offset, radix: 16))=0x\(String(access.value, radix: 16))",
            "transmits": "\(transmits.map { "TSD\($0.descriptor) \(Self.hex($0.range))" })",
            "ring": "\(ring.map(Self.hex) ?? "-")", "mode": "\(monitors.enforced.rawValue)",
        ])
    }

    static func hex(_ r: Range<UInt64>) -> String { "0x\(String(r.lowerBound, radix: 16))..<0x\(String(r.upperBound, radix: 16))" }

    /// A function-level reset, before it reaches the device.
    func reset() { monitors.reset() }

    /// The ledger with the interrupt edges counted so far.
    public var ledger: ExitLedger {
        var ledger = monitors.ledger
        ledger.interruptEdges = edges.count
        return ledger
    }

    // MARK: FrameReceiver: the NIC's face to the wire

    public var canReceiveFrame: Bool { nic.canReceiveFrame }

    @discardableResult
    public func receive(frame: [UInt8]) -> Bool {
        guard !monitors.enforcedMonitor.checks || check.ringPermitted(nic.state) else {
            receivesDenied += 1
            return false
        }
        return nic.receive(frame: frame)
    }
}
