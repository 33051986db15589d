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
        abstract: "Serve an NE2000 (RTL8029) or RTL8139 NIC to QEMU over vfio-user.",
        discussion: """
            Listens on a UNIX socket for QEMU's vfio-user-pci client and serves one connection at a time; \
            the device keeps its state across reconnections. With --netns, the NIC's wire is a TAP \
            interface created here and moved into that (existing) network namespace with --peer-address, \
            so all traffic stays inside it. Stops on SIGTERM or SIGINT and then writes --stats-json.

            One device for several guests: instead of --socket, give --guest once per guest, \
            NAME=SOCKET[,mac=MAC][,mode=MODE] (mode defaults to --mode; mac to --mac with its last byte \
            plus the guest's position). One guest owns the NE2000 at a time; the others' accesses wait \
            (at most --hold-bound ms) until the device is switched to them where the host can show it is \
            reusable (host-monitor/SHARING.md). Frames are handed out by destination MAC. --ledger-json \
            and --record then name one file per guest (PATH-NAME.json, PATH-NAME.vptrace); --stats-json \
            holds every guest's counters and the switches.
            """)

    @Option(help: "Path of the vfio-user socket to listen on (one guest).")
    var socket: String?

    @Flag(help: ArgumentHelp(
        "Print the QEMU options that attach a VM to this vpio-host (--socket, or each --guest's socket) and exit: "
            + "guest RAM as a shared memfd of --memory MiB (vfio-user maps it) and the vfio-user-pci device. Add them to your VM's QEMU line."))
    var printQemuArgs = false

    @Option(help: "With --print-qemu-args: the VM's RAM in MiB (must equal its -m).")
    var memory = 1024

    @Option(name: .customLong("guest"), help: ArgumentHelp(
        "A guest of a shared device: NAME=SOCKET[,mac=MAC][,mode=MODE]; repeat for each.", valueName: "spec"))
    var guests: [GuestOption] = []

    @Option(help: "Sharing: longest a guest's access is held before the owner is switched out regardless (ms).")
    var holdBound = 1000

    @Option(help: "Sharing: the owner's quantum in device accesses (or 20 ms) while another guest waits.")
    var quantumAccesses = 2000

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

    @Option(help: "Which mode's monitor is enforced (the others run as shadows): emulated, vmm-model, cooperative, on-demand, passthrough.")
    var mode: Mode = .cooperative

    @Option(help: "Record the exact access stream (with values and interrupt edges) to this trace file.")
    var record: String?

    @Option(help: "Write the exit ledger (every mode) as JSON to this file on exit.")
    var ledgerJson: String?

    @Flag(help: "Print the one-line ledger summary every second even when stderr is not a terminal.")
    var live = false

    @Option(help: ArgumentHelp(
        "After serving something, poll without sleeping for this long before sleeping in poll again (0: never). "
            + "Saves a wakeup when the next request comes soon, but takes a CPU the client may need; off by default.",
        valueName: "µs"))
    var spinMicroseconds = 0

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: ArgumentHelp(
        "The NIC that serves the guest: ours (our NE2000), qemu-ne2k (QEMU's ne2k_pci in a device-only QEMU over qtest, "
            + "found as `vpio run` finds QEMU), or rtl8139 (our RTL8139C, a bus master: its DMA reaches guest memory, "
            + "checked at each transmit start and ring setup; modes emulated, vmm-model, cooperative, passthrough)."))
    var device: DeviceChoice = .ours

    enum DeviceChoice: String, ExpressibleByArgument {
        case ours
        case qemuNE2K = "qemu-ne2k"
        case rtl8139
    }

    /// The backend --device names; QEMU's sockets and log go beside --socket.
    func backend() throws -> GuestDevice.Backend {
        switch device {
        case .ours:
            return .ours(mac: MACAddress(mac)!.bytes)
        case .rtl8139:
            preconditionFailure("the RTL8139 is served by serveRTL8139")
        case .qemuNE2K:
            guard let installation = QEMUInstallation.locate(in: try CacheLayout.resolve()) else {
                throw ValidationError("--device qemu-ne2k: no QEMU >= 10.1 on the host or in the cache (run `vpio provision`)")
            }
            let directory = URL(fileURLWithPath: socket ?? "/tmp/vpio-host.sock").deletingLastPathComponent()
            return .qemu(command: installation.argvPrefix, environment: installation.environment, directory: directory, mac: mac)
        }
    }

    func validate() throws {
        guard MACAddress(mac) != nil else { throw ValidationError("--mac '\(mac)' is not six hex bytes separated by ':'") }
        guard (socket == nil) != guests.isEmpty else { throw ValidationError("give either --socket (one guest) or --guest (each guest of a shared device)") }
        guard guests.isEmpty || device == .ours else {
            throw ValidationError("--guest needs --device ours: QEMU's ne2k_pci reads page 2 back incompletely, so its context cannot be saved")
        }
        guard Set(guests.map(\.name)).count == guests.count, Set(guests.map(\.socket)).count == guests.count else {
            throw ValidationError("--guest names and sockets must differ")
        }
        guard (1...5000).contains(holdBound), quantumAccesses > 0 else { throw ValidationError("--hold-bound 1...5000 ms, --quantum-accesses > 0") }
        guard (0...10_000).contains(spinMicroseconds) else { throw ValidationError("--spin-microseconds 0...10000") }
        guard (16...1_048_576).contains(memory) else { throw ValidationError("--memory 16...1048576 MiB") }
        if device == .rtl8139 {
            guard guests.isEmpty else { throw ValidationError("--device rtl8139 serves one guest (--socket); sharing is the NE2000's") }
            guard mode != .onDemand else { throw ValidationError("--device rtl8139 has no on-demand mode: its DMA reaches guest memory, which a guest never owns wholly") }
            guard record == nil else { throw ValidationError("--record writes the NE2000's trace format; not with --device rtl8139") }
        }
    }

    func run() throws {
        if printQemuArgs {
            let sockets = guests.isEmpty ? [socket!] : guests.map(\.socket)
            for path in sockets { print(VFIOUserQEMUOptions(socket: URL(fileURLWithPath: path).path, memoryMiB: memory).shellLine) }
            return
        }
        var logger = Logger(label: "vpio-host")
        logger.logLevel = logLevel
        StopSignal.install()
        if device == .rtl8139 { return try serveRTL8139(socket: socket!, logger: logger) }
        if guests.isEmpty { try serveOne(socket: socket!, logger: logger) } else { try serveShared(logger: logger) }
    }

    func serveOne(socket: String, logger: Logger) throws {
        let guest = try GuestLedger(enforced: mode, recordPath: record, live: live || isatty(STDERR_FILENO) != 0, logger: logger)
        let wire = try netns.map { try placeTap(in: $0, name: tapName, address: peerAddress, logger: logger) }
        let device = try GuestDevice(mode: mode, backend: backend(), ledger: guest, logger: logger) { frame in
            wire?.transmit(frame)
        }
        defer { device.qemu?.stop() }
        let peer = wire.map { TapPeer(wire: $0, device: device.receiveGate, logger: logger) }
        let server = device.server
        let listener = try UnixSocket.listen(at: FilePath(socket))
        defer { try? FileManager.default.removeItem(atPath: socket) }
        logger.notice("listening", metadata: ["socket": "\(socket)"])

        // A failed device backend (QEMU's died) ends the serving: the guest is not left spinning on all ones.
        let loop = ServerLoop(servers: [(server, listener)], sources: peer.map { [$0] } ?? [], tick: LedgerTick(ledgers: [guest]),
                              spinMicroseconds: spinMicroseconds)
        try loop.run { StopSignal.requested() || device.qemuFailure != nil }

        var stats = HostStatistics(server: server, nic: device.nicCounters, peer: peer, agent: device.agent, enforcement: device.enforcer.report,
                                   wideAccessesIgnored: guest.wideAccessesIgnored)
        stats.loop = loop.counters
        logger.notice("served: \(stats.summary)")
        if let statsJson { try stats.writeJSON(to: statsJson) }
        try guest.finish(jsonPath: ledgerJson)
        // QEMU's device dying under a guest is a failed run, said plainly (its reads gave all ones since).
        if let failure = device.qemuFailure {
            logger.error("the device failed: \(failure); its log: \(device.qemu?.log.path ?? "?")")
            throw ExitCode(1)
        }
    }
}

/// The NIC's TAP, created here and moved into the namespace with the peer's address.
func placeTap(in netns: String, name: String, address: String, logger: Logger) throws -> TapWire {
    let tap = try TapDevice.create(name: name)
    try NetworkNamespace(name: netns).adopt(link: tap.name, address: address)
    logger.info("TAP placed", metadata: ["tap": "\(tap.name)", "netns": "\(netns)", "address": "\(address)"])
    return TapWire(tap: tap, logger: logger)
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension Mode: ExpressibleByArgument {}
