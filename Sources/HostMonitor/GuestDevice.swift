import Foundation
import AgentLink
import DeviceBus
import Enforcement
import Logging
import NE2000
import QEMUDevice
import VFIOUserServer
import VPIOMonitor

/// One guest's NE2000 as vpio-host serves it, wired in one place: the NIC on its interrupt line (which
/// the ledger also sees), the PCI endpoint and vfio-user server, the agent monitor behind the vendor
/// capability, the DMA gate on every access, the ledger on function resets, the receive gate in front
/// of the NIC. vpio-host adds the TAP and the socket; the session fuzz target drives it as it is.
public final class GuestDevice {
    /// Which NE2000 serves the guest.
    public enum Backend {
        /// Ours (Sources/NE2000).
        case ours(mac: [UInt8])
        /// QEMU's ne2k_pci in a device-only QEMU: `command` its argv prefix, `environment` what it adds,
        /// `directory` where its sockets and log go.
        case qemu(command: [String], environment: [String: String], directory: URL, mac: String)
    }

    public let ledger: GuestLedger
    public let nic: NetworkBusDevice
    /// Our NE2000's counters (nil with QEMU's).
    public var nicCounters: NE2000Counters? { (nic as? NE2000)?.counters }
    /// The device-only QEMU behind `nic`, with QEMU's backend.
    public let qemu: DeviceOnlyQEMU?
    /// Why QEMU's backend stopped serving (QEMU died, hung or answered nonsense); nil while it serves.
    public var qemuFailure: QTestFailure? { qemu?.device.failure }
    public let endpoint: PCIEndpoint
    public let server: VFIOUserServer
    public let agent: AgentMonitor
    public let enforcer: Enforcer
    /// Where received frames enter: each is judged before the NIC stores it.
    public let receiveGate: ReceiveGate

    public init(mode: Mode, backend: Backend, ledger: GuestLedger, logger: Logger, transmit: @escaping FrameSink) throws {
        let intx = INTxRouter()
        let line = InterruptLine {
            intx.lineChanged($0)
            ledger.interrupt($0)
        }
        self.ledger = ledger
        switch backend {
        case let .ours(mac):
            nic = NE2000(mac: mac, interrupt: line, transmit: transmit)
            qemu = nil
        case let .qemu(command, environment, directory, mac):
            let qemu = try DeviceOnlyQEMU(command: command, environment: environment, directory: directory, mac: mac,
                                          interrupt: line, sink: transmit)
            nic = qemu.device
            self.qemu = qemu
        }
        enforcer = Enforcer(mode: mode)
        receiveGate = ReceiveGate(nic: nic, enforcer: enforcer, arrivals: ledger)
        endpoint = PCIEndpoint(identity: .rtl8029, device: nic, interruptLine: line, intx: intx)
        let server = VFIOUserServer(endpoint: endpoint, logger: logger)
        self.server = server
        let agent = GuestWiring.agentMonitor(endpoint: endpoint, server: server)
        self.agent = agent
        let gate = DMAGate(ledger: ledger, agent: agent, enforcer: enforcer, device: nic, logger: logger)
        endpoint.accessHook = { gate.filter($0) }
        endpoint.resetObserver = { ledger.reset() }
    }
}

/// What every guest's PCI function is wired with, alone or sharing a device.
enum GuestWiring {
    /// The agent monitor behind the endpoint's vendor capability, reading the guest memory of whichever
    /// session `server` has; the capability hears the guest's config-space writes.
    static func agentMonitor(endpoint: PCIEndpoint, server: VFIOUserServer) -> AgentMonitor {
        let agent = AgentMonitor(capability: AgentCapability(endpoint: endpoint, channel: AgentChannel())) { [unowned server] in
            server.session?.dma
        }
        endpoint.configWritten = { [unowned server] offset, count in
            agent.capability.configWritten(offset: offset, count: count, memory: server.session?.dma)
        }
        return agent
    }
}
