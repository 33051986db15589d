import AgentLink
import Enforcement
import Foundation
import NE2000
import PacketBackend
import VFIOUserServer

/// What vpio-host reports on exit: device accesses served, vfio-user traffic, interrupts, frames.
struct HostStatistics: Codable {
    var connections: Int
    var accesses: PCIEndpoint.Counters
    var messages: Session.Counters
    var interruptsSignalled: Int
    var interruptSignalFailures: Int
    /// Our NE2000's counters; absent with QEMU's ne2k_pci.
    var nic: NE2000Counters?
    var wire: TapPeer.Counters?
    var agent: AgentChannel.Counters
    var agentChecks: AgentMonitor.Counters
    var enforcement: Enforcer.Report
    /// Register accesses wider than a byte (and accesses off BAR0), which the NE2000 drops.
    var wideAccessesIgnored: Int
    /// The serving loop's rounds and the time it spent handling them (one guest's vpio-host).
    var loop: ServerLoop.Counters?

    init(server: VFIOUserServer, nic: NE2000Counters?, peer: TapPeer?, agent: AgentMonitor, enforcement: Enforcer.Report,
         wideAccessesIgnored: Int) {
        self.wideAccessesIgnored = wideAccessesIgnored
        connections = server.connections
        accesses = server.endpoint.counters
        messages = server.sessionCounters
        interruptsSignalled = server.endpoint.intx.signalsSent
        interruptSignalFailures = server.endpoint.intx.signalFailures
        self.nic = nic
        wire = peer?.counters
        self.agent = agent.channel.counters
        agentChecks = agent.counters
        self.enforcement = enforcement
    }

    var summary: String {
        "connections=\(connections) bar_reads=\(accesses.barReads) bar_writes=\(accesses.barWrites) "
            + "config=\(accesses.configReads + accesses.configWrites) messages=\(messages.messages) "
            + "rejected=\(messages.rejected) irqs=\(interruptsSignalled) "
            + "frames_in=\(wire?.framesToGuest ?? 0) frames_out=\(wire?.framesFromGuest ?? 0) "
            + "enforced=\(enforcement.current.rawValue) denied=\(enforcement.denied) switches=\(enforcement.switches.count)"
    }
}
