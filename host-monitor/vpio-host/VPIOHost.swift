import AgentLink
import Enforcement
import ArgumentParser
import DeviceBus
import Foundation
import HostMonitor
import Logging
import NE2000
import PacketBackend
import PCIFunction
import VFIOUserServer
import VPIOProvision
import VPIOMonitor
import VPIOSystem

@main
struct VPIOHost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpio-host",
        abstract: "Serve an NE2000 (RTL8029) NIC to QEMU over vfio-user.",
        discussion: """
            Listens on a UNIX socket for QEMU's vfio-user-pci client and serves one connection at a time; \
            the device keeps its state across reconnections. With --netns, the NIC's wire is a TAP \
            interface created here and moved into that (existing) network namespace with --peer-address, \
            so all traffic stays inside it. Stops on SIGTERM or SIGINT and then writes --stats-json.
            """)

    @Option(help: "Path of the vfio-user socket to listen on.")
    var socket: String

    @Option(help: "Network namespace (must exist) to move the NIC's TAP into. Without it the NIC has no wire.")
    var netns: String?

    @Option(help: "Name of the TAP interface.")
    var tapName = "vpiotap0"

    @Option(help: "Address/prefix the TAP gets inside the namespace (the guest's peer).")
    var peerAddress = "10.77.0.1/24"

    @Option(help: "The NIC's MAC address.")
    var mac = "52:54:00:12:34:56"

    @Option(help: "Write counters as JSON to this file on exit.")
    var statsJson: String?

    @Option(help: "Which mode's monitor is enforced (the others run as shadows): emulated, vmm-model, cooperative, passthrough.")
    var mode: Mode = .cooperative

    @Option(help: "Record the exact access stream (with values and interrupt edges) to this trace file.")
    var record: String?

    @Option(help: "Write the exit ledger (every mode) as JSON to this file on exit.")
    var ledgerJson: String?

    @Flag(help: "Print the one-line ledger summary every second even when stderr is not a terminal.")
    var live = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "The NE2000 that serves the guest: ours, or qemu-ne2k (QEMU's ne2k_pci in a device-only QEMU over qtest, found as `vpio run` finds QEMU).")
    var device: DeviceChoice = .ours

    enum DeviceChoice: String, ExpressibleByArgument {
        case ours
        case qemuNE2K = "qemu-ne2k"
    }

    /// The backend --device names; QEMU's sockets and log go beside --socket.
    func backend() throws -> GuestDevice.Backend {
        switch device {
        case .ours:
            return .ours(mac: MACAddress(mac)!.bytes)
        case .qemuNE2K:
            guard let installation = QEMUInstallation.locate(in: try CacheLayout.resolve()) else {
                throw ValidationError("--device qemu-ne2k: no QEMU >= 10.1 on the host or in the cache (run `vpio provision`)")
            }
            let directory = URL(fileURLWithPath: socket).deletingLastPathComponent()
            return .qemu(command: installation.argvPrefix, environment: installation.environment, directory: directory, mac: mac)
        }
    }

    func validate() throws {
        guard MACAddress(mac) != nil else { throw ValidationError("--mac '\(mac)' is not six hex bytes separated by ':'") }
    }

    func run() throws {
        var logger = Logger(label: "vpio-host")
        logger.logLevel = logLevel
        StopSignal.install()

        let guest = try GuestLedger(enforced: mode, recordPath: record, live: live || isatty(STDERR_FILENO) != 0, logger: logger)
        var peer: TapPeer?
        let device = try GuestDevice(mode: mode, backend: backend(), ledger: guest, logger: logger) { frame in
            peer?.transmit(frame)
        }
        defer { device.qemu?.stop() }
        if let netns {
            let tap = try TapDevice.create(name: tapName)
            try NetworkNamespace(name: netns).adopt(link: tap.name, address: peerAddress)
            peer = TapPeer(tap: tap, logger: logger)
            peer?.device = device.receiveGate
            logger.info("TAP placed", metadata: ["tap": "\(tap.name)", "netns": "\(netns)", "address": "\(peerAddress)"])
        }
        let server = device.server
        let listener = try UnixSocket.listen(at: FilePath(socket))
        defer { try? FileManager.default.removeItem(atPath: socket) }
        logger.notice("listening", metadata: ["socket": "\(socket)"])

        // A failed device backend (QEMU's died) ends the serving: the guest is not left spinning on all ones.
        try server.run(listener: listener, sources: peer.map { [$0] } ?? []) {
            guest.tick()
            return StopSignal.requested() || device.qemuFailure != nil
        }

        let stats = HostStatistics(server: server, nic: device.nicCounters, peer: peer, agent: device.agent, enforcement: device.enforcer.report,
                                   wideAccessesIgnored: guest.wideAccessesIgnored)
        logger.notice("served: \(stats.summary)")
        if let statsJson { try stats.write(to: statsJson) }
        try guest.finish(jsonPath: ledgerJson)
        // QEMU's device dying under a guest is a failed run, said plainly (its reads gave all ones since).
        if let failure = device.qemuFailure {
            logger.error("the device failed: \(failure); its log: \(device.qemu?.log.path ?? "?")")
            throw ExitCode(1)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension Mode: ExpressibleByArgument {}
