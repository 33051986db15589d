import AgentLink
import DeviceBus
import Foundation
import HostMonitor
import Logging
import PacketBackend
import RTL8139
import VFIOUserServer
import VPIOSystem

extension VPIOHost {
    /// One guest's RTL8139 (`--device rtl8139`): the server loop over its socket and the TAP.
    func serveRTL8139(socket: String, logger: Logger) throws {
        let wire = try netns.map { try placeTap(in: $0, name: tapName, address: peerAddress, logger: logger) }
        let guest = RTL8139Guest(mode: mode, mac: MACAddress(mac)!.bytes, logger: logger) { wire?.transmit($0) }
        let peer = wire.map { TapPeer(wire: $0, device: guest.gate, logger: logger) }
        let listener = try UnixSocket.listen(at: FilePath(socket))
        defer { try? FileManager.default.removeItem(atPath: socket) }
        logger.notice("listening", metadata: ["socket": "\(socket)", "device": "rtl8139"])
        let loop = ServerLoop(servers: [(guest.server, listener)], sources: peer.map { [$0] } ?? [], spinMicroseconds: spinMicroseconds)
        try loop.run { StopSignal.requested() }

        var stats = RTL8139Statistics(guest: guest, peer: peer)
        stats.loop = loop.counters
        logger.notice("served: \(stats.summary)")
        if let statsJson { try stats.writeJSON(to: statsJson) }
        let ledger = guest.gate.ledger
        for line in ledger.table { logger.notice("ledger \(line)") }
        if let ledgerJson { try ledger.writeJSON(to: ledgerJson) }
    }
}

/// What vpio-host reports on exit when it served an RTL8139.
struct RTL8139Statistics: Codable {
    var device = "rtl8139"
    var connections: Int
    var accesses: PCIEndpoint.Counters
    var messages: Session.Counters
    var interruptsSignalled: Int
    var interruptSignalFailures: Int
    var nic: RTL8139Counters
    /// The device's registers when serving ended: where a stalled guest left its ring and interrupts.
    var registersAtExit: RTL8139State
    var wire: TapPeer.Counters?
    var agent: AgentChannel.Counters
    /// The agent's intents matched against the DMA starts the host found.
    var agentCheck: RTL8139IntentCheck.Counters
    var enforced: String
    /// Writes the enforced mode denied, and frames not stored because the ring was not permitted.
    var denied: Int
    var receivesDenied: Int
    /// DMA the device attempted while the guest had bus mastering off (refused).
    var dmaWithoutBusMaster: Int
    var loop: ServerLoop.Counters?

    init(guest: RTL8139Guest, peer: TapPeer?) {
        connections = guest.server.connections
        accesses = guest.endpoint.counters
        messages = guest.server.sessionCounters
        interruptsSignalled = guest.endpoint.intx.signalsSent
        interruptSignalFailures = guest.endpoint.intx.signalFailures
        nic = guest.nic.counters
        registersAtExit = guest.nic.state
        wire = peer?.counters
        agent = guest.agent.channel.counters
        agentCheck = guest.gate.intents.counters
        enforced = guest.gate.monitors.enforced.rawValue
        denied = guest.gate.monitors.enforcedMonitor.counters.denials
        receivesDenied = guest.gate.receivesDenied
        dmaWithoutBusMaster = guest.memory.refusedWhileDisabled
    }

    var summary: String {
        "connections=\(connections) bar_reads=\(accesses.barReads) bar_writes=\(accesses.barWrites) "
            + "config=\(accesses.configReads + accesses.configWrites) messages=\(messages.messages) "
            + "rejected=\(messages.rejected) irqs=\(interruptsSignalled) "
            + "frames_in=\(wire?.framesToGuest ?? 0) frames_out=\(wire?.framesFromGuest ?? 0) "
            + "tx=\(nic.framesTransmitted) rx=\(nic.framesReceived) enforced=\(enforced) denied=\(denied) receives_denied=\(receivesDenied) "
            + "agent_starts=\(agentCheck.starts) intent_hits=\(agentCheck.intents.hits) agent_findings=\(agentCheck.findings)"
    }
}
