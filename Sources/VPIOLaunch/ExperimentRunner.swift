import Foundation
import Supervision
import Logging
import PacketBackend
import VPIOProvision

/// Everything one run needs to know.
public struct RunConfiguration: Sendable {
    /// Where the guest's NIC comes from.
    public enum NICMode: Sendable, Equatable {
        /// vpio-host serves the NIC over vfio-user; it creates the TAP and moves it into the namespace.
        case vpioHost(binary: URL, extraArguments: [String])
        /// QEMU's in-process `ne2k_pci` or `rtl8139` on a TAP the runner creates in the namespace (QEMU runs inside it).
        case qemu(QEMUNICModel)

        public static let qemuNE2K = NICMode.qemu(.ne2kPCI)

        public var label: String {
            switch self {
            case .vpioHost: return "vpio-host"
            case .qemu(.ne2kPCI): return "qemu-ne2k"
            case .qemu(.rtl8139): return "qemu-rtl8139"
            }
        }
    }

    /// The guest's program and driver.
    public enum GuestKind: String, Sendable, Equatable, CaseIterable {
        /// Debian's Linux with `ne2k-pci` (and the agent, when asked for).
        case linux
        /// iPXE with its `ns8390` driver: polls, no interrupts, its own register sequences.
        case ipxe
        /// A full Debian 12 system (systemd, kernel 6.1) with the agent installed from its package.
        case debian12
        /// The same on Debian 13 (kernel 6.12, compressed modules).
        case debian13
        /// The workloads each can run.
        public var workloads: [String] {
            switch self {
            case .linux: ["download", "ssh", "ssh-session", "none"] + RunResult.checkedWorkloads
            case .ipxe: ["download", "none"]
            case .debian12, .debian13: ["download", "ssh", "ssh-session", "none"]
            }
        }
        /// The Debian release of a full Debian guest.
        public var debianSuite: DebianSuite? {
            switch self {
            case .debian12: .bookworm
            case .debian13: .trixie
            case .linux, .ipxe: nil
            }
        }
    }

    public var layout: CacheLayout
    public var nic: NICMode
    public var workloads: [String] = ["download", "ssh"]
    /// Size of the downloaded file in bytes.
    public var size: Int = ServedFiles.defaultSize
    public var accelerator: Accelerator = .tcg
    /// Overall limit for the guest run (boot to power-off), seconds.
    public var timeout: TimeInterval = 300
    /// Keep the run directory (logs, stats) even when the run succeeded.
    public var keepLogs = false
    /// Provision the cache first when something is missing.
    public var provisionIfNeeded = true
    /// Optional cap of the guest's TCP receive buffer (bytes).
    public var receiveBuffer: Int?
    /// Start the guest agent (vpio-agent) after the driver loads: `.register` announces its ring to the
    /// host through the VPIO capability, `.observe` only attaches and counts (`--no-register`).
    public var agent: GuestParameters.AgentMode?
    /// What the guest runs: Linux with its ne2k-pci driver, or iPXE with its ns8390 driver.
    public var guest: GuestKind = .linux
    /// The agent's heartbeat/state interval (seconds); nil: the agent's default (1 s).
    public var agentPublishInterval: Double?
    /// Print the guest console (prefixed) to stdout.
    public var echoConsole = true
    public var consolePrefix = "guest| "
    public var peerAddress = "10.77.0.1"
    public var guestAddress = "10.77.0.2"
    public var prefixLength = 24
    public var mac = "52:54:00:12:34:56"
    public var httpPort = 8080
    public var sshPort = 2222
    /// How long vpio-host may take to create its socket.
    public var hostStartTimeout: TimeInterval = 30
    /// The per-workload timeout inside the guest (seconds); nil: what the overall timeout leaves.
    public var workloadTimeout: Int?
    /// A fault to inject while the guest runs (issue 11's fault-injection tests).
    public var fault: FaultInjection?
    /// Guests sharing the one vpio-host (issue 14): guest N (from 1) gets the N-th address from
    /// `guestAddress` on, and downloads `size` + (N − 1) × 4 KiB, so each fetches a file of its own.
    public var guests = 1
    /// Workloads of particular guests (by slot, from 0), instead of `workloads`.
    public var guestWorkloads: [Int: [String]] = [:]
    /// Enforced modes of a shared device's guests by slot (from 0), where they differ from vpio-host's --mode.
    public var guestModes: [Int: String] = [:]
    /// The driver a Linux guest loads: nil for ne2k-pci; 8139too (port I/O or MMIO) for an RTL8139,
    /// whether vpio-host serves it (`--device rtl8139` in `extraArguments`) or QEMU does (`.qemu(.rtl8139)`).
    public var nicDriver: GuestParameters.NICDriver?

    public func workloads(slot: Int) -> [String] { guestWorkloads[slot] ?? workloads }

    /// Guest `slot`'s (from 0) address and download size.
    public func guestAddress(slot: Int) -> String {
        var octets = guestAddress.split(separator: ".").compactMap { Int($0) }
        octets[octets.count - 1] += slot
        return octets.map(String.init).joined(separator: ".")
    }

    public func downloadSize(slot: Int) -> Int { size + slot * 4096 }

    public init(layout: CacheLayout, nic: NICMode) {
        self.layout = layout
        self.nic = nic
    }
}

/// Runs one experiment: stale-namespace cleanup, provisioning if needed, a private network namespace with the
/// peer servers, the NIC provider (vpio-host or QEMU's own NE2000), QEMU with the guest console streamed and
/// parsed, then teardown of everything it started — on every path, including errors and SIGINT.
public final class ExperimentRunner: @unchecked Sendable {
    public let configuration: RunConfiguration
    let logger: Logger
    let progress = ProgressReporter(prefix: "[run]")
    private let lock = NSLock()
    /// Each guest's result, by slot.
    private var results: [RunResult]
    private var doneSeenAt: [Date?]
    /// What an iPXE guest's console showed of its download (verified on the host at the end).
    private var ipxeDownload = IPXEDownloadCheck()

    public init(configuration: RunConfiguration, logger: Logger = Logger(label: "vpio.run")) {
        self.configuration = configuration
        self.logger = logger
        results = (0..<configuration.guests).map {
            RunResult(configuration: configuration.nic.label, workloads: configuration.workloads(slot: $0))
        }
        doneSeenAt = Array(repeating: nil, count: configuration.guests)
    }

    /// The cache a run boots from, provisioned when something is missing or was built from inputs that
    /// changed since (an edited agent or init script), unless provisioning is off. The served file is made
    /// even with provisioning off: it is local, cheap and deterministic, and every --size needs its own.
    private func readyCache() throws -> QEMUInstallation {
        let c = configuration
        let debian = c.guest.debianSuite
        if !c.provisionIfNeeded, Provisioner.readiness(of: c.layout, servedSize: c.size).qemu != nil {
            try Provisioner(layout: c.layout).ensureServedFiles(sizes: [c.size])
        }
        var readiness = Provisioner.readiness(of: c.layout, servedSize: c.size, debian: debian)
        let stale = readiness.missing.isEmpty ? Provisioner.staleSteps(of: c.layout, debian: debian) : []
        provisioning: if !readiness.missing.isEmpty || !stale.isEmpty {
            guard c.provisionIfNeeded else {
                guard readiness.missing.isEmpty else {
                    throw StepError(
                        step: "check cache", reason: "not provisioned: \(readiness.missing.joined(separator: "; ")); run `vpio provision`")
                }
                progress.line("warning: --no-provision: booting the cache as it is, though stale: \(stale.joined(separator: "; "))")
                break provisioning
            }
            let why = readiness.missing.isEmpty ? "stale: \(stale.joined(separator: "; "))" : "incomplete (\(readiness.missing.count) missing)"
            progress.line("cache \(why); provisioning")
            try Provisioner(layout: c.layout).provision(servedSizes: [c.size], debianSuites: debian.map { [$0] } ?? [])
            readiness = Provisioner.readiness(of: c.layout, servedSize: c.size, debian: debian)
        }
        guard let qemu = readiness.qemu, readiness.missing.isEmpty else {
            throw StepError(step: "check cache", reason: "still missing after provisioning: \(readiness.missing.joined(separator: "; "))")
        }
        return qemu
    }

    /// Runs the experiment and returns what the guest reported. Throws a `StepError` when the run could
    /// not be set up; a run that set up but whose workloads failed returns a result with `failures`. Each
    /// step registers the cleanup of what it started; they all run, in reverse, on every path.
    public func run() throws -> RunResult {
        let started = Date()
        let session = RunSession(logger: logger)
        defer { session.end() }
        for name in NetworkNamespace.removeStale() { progress.line("removed stale network namespace \(name)") }
        let qemu = try readyCache()
        let sizes = (0..<configuration.guests).map(configuration.downloadSize(slot:))
        try Provisioner(layout: configuration.layout).ensureServedFiles(sizes: sizes)
        let checksums = try sizes.map { try ServedFiles.checksum(layout: configuration.layout, size: $0) }
        try session.checkInterrupted("provision")
        let directory = try makeRunDirectory(session)
        let namespace = try createNamespace(session)
        let provider = try startNICProvider(in: namespace, directory: directory, session: session)
        let servers = try startPeerServers(in: namespace, directory: directory, session: session)
        let boot = GuestBoot(installation: qemu, nics: provider.nics, prefix: provider.qemuPrefix, checksums: checksums,
                             directory: directory.url, deadline: started.addingTimeInterval(configuration.timeout))
        let guests = try (0..<configuration.guests).map {
            try bootGuest(boot, workloads: configuration.workloads(slot: $0), slot: $0, index: $0 + 1, session: session)
        }
        let parts = RunParts(guests: guests, host: provider.host, hostLaunch: provider.hostLaunch, servers: servers, tapName: provider.tapName)
        let injector = configuration.fault.map(FaultInjector.init)
        let timedOut = try supervise(parts, injector: injector, boot: boot, started: started, session: session)
        var final = collect(parts, directory: directory)
        final.timedOut = timedOut
        final.interrupted = session.trap.interrupted
        final.fault = injector?.report
        final.wallSeconds = Date().timeIntervalSince(started)
        directory.keep = configuration.keepLogs || !final.succeeded
        if final.interrupted { throw StepError.interrupted(step: "guest run") }
        return final
    }

    // MARK: - Steps

    /// `/tmp/vpio-<pid>` (short, so the socket path stays far below the 108-byte limit), emptied first;
    /// removed at the end unless the run failed (or threw) or logs are to be kept.
    func makeRunDirectory(_ session: RunSession) throws -> RunDirectory {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        let url = URL(fileURLWithPath: base).appendingPathComponent("vpio-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw StepError(step: "create run directory", reason: "\(url.path): \(error)")
        }
        let directory = RunDirectory(url: url)
        session.cleanup.push("remove run directory") { [progress] in
            if directory.keep { progress.line("logs kept in \(url.path)") } else { try FileManager.default.removeItem(at: url) }
        }
        return directory
    }

    /// The run's private network namespace: the peer lives there, nothing routes off this machine.
    func createNamespace(_ session: RunSession) throws -> NetworkNamespace {
        let c = configuration
        let namespace = try NetworkNamespace.create()
        session.adopt(namespace)
        progress.line("network namespace \(namespace.name) (peer \(c.peerAddress)/\(c.prefixLength), no route off this machine)")
        return namespace
    }

    /// Where the guest's NIC comes from: vpio-host (which creates the TAP in the namespace) or a TAP for
    /// QEMU's in-process ne2k_pci, with QEMU then run inside the namespace.
    func startNICProvider(in namespace: NetworkNamespace, directory: RunDirectory, session: RunSession) throws -> NICProvider {
        let c = configuration
        let tapName = "vpiotap\(getpid() % 100_000_000)"
        switch c.nic {
        case let .vpioHost(binary, extraArguments):
            guard FileManager.default.isExecutableFile(atPath: binary.path) else {
                throw StepError(step: "start vpio-host", reason: "\(binary.path) is not an executable (build it, or pass --host-binary)")
            }
            let sockets = c.guests == 1 ? [directory.url.appendingPathComponent("ne2k.sock").path]
                : (1...c.guests).map { directory.url.appendingPathComponent("g\($0).sock").path }
            let listen = c.guests == 1 ? ["--socket", sockets[0]] : sockets.enumerated().flatMap { slot, socket in
                ["--guest", "g\(slot + 1)=\(socket)" + (c.guestModes[slot].map { ",mode=\($0)" } ?? "")]
            }
            let launch = HostLaunch(
                argv: [binary.path] + listen + ["--netns", namespace.name, "--tap-name", tapName,
                       "--peer-address", "\(c.peerAddress)/\(c.prefixLength)", "--mac", c.mac,
                       "--stats-json", directory.hostStatistics.path] + extraArguments,
                socket: sockets.last!, directory: directory.url)
            let host = try startHost(launch, logName: "vpio-host.log", session: session)
            return NICProvider(nics: sockets.map { .vfioUser(socket: $0) }, tapName: tapName, host: host, hostLaunch: launch, qemuPrefix: [])
        case let .qemu(model):
            try namespace.addTap(tapName)
            try namespace.configure(link: tapName, address: "\(c.peerAddress)/\(c.prefixLength)")
            progress.line("TAP \(tapName) in \(namespace.name) for QEMU's own \(model.rawValue)")
            return NICProvider(nics: [.qemuDevice(model, tap: .ifname(tapName), mac: c.mac)], tapName: tapName, host: nil, hostLaunch: nil,
                               qemuPrefix: namespace.execPrefix)
        }
    }

    /// The peer's HTTP and ssh servers, in the namespace.
    func startPeerServers(in namespace: NetworkNamespace, directory: RunDirectory, session: RunSession) throws -> PeerServers {
        let c = configuration
        let servers = try PeerServers.start(
            in: namespace, configuration: .init(address: c.peerAddress, httpPort: c.httpPort, sshPort: c.sshPort, layout: c.layout),
            logDirectory: directory.url)
        session.cleanup.push("stop peer servers") { servers.stop() }
        progress.line("peer servers: http://\(c.peerAddress):\(c.httpPort)/ and ssh \(c.peerAddress):\(c.sshPort)")
        return servers
    }

    /// After the guest: QEMU stopped, the iPXE download judged while vpio-host still holds the TAP, then
    /// vpio-host stopped and its statistics read. Returns the result so far.
    func collect(_ parts: RunParts, directory: RunDirectory) -> RunResult {
        let qemuStatuses = parts.guests.map { $0.process.terminate(grace: 3) }
        for guest in parts.guests { guest.reader.wait(timeout: 5) }
        verifyIPXEDownload(servers: parts.servers, tapName: parts.tapName)
        let hostErrors = parts.host.map { stopHost($0, log: parts.hostLog, statistics: directory.hostStatistics) } ?? []
        parts.servers.stop()
        var all = lock.withLock { results }
        for (slot, guest) in parts.guests.enumerated() {
            all[slot].qemuExitStatus = qemuStatuses[slot]
            if all[slot].guestRC == nil, let log = try? String(contentsOf: guest.log, encoding: .utf8), !log.isEmpty {
                progress.line("QEMU stderr of guest \(slot + 1) (last lines):\n\(log.split(separator: "\n").suffix(15).joined(separator: "\n"))")
            }
        }
        var final = all[0]
        final.hostErrors += hostErrors
        final.otherGuests = Array(all.dropFirst())
        return final
    }

    /// vpio-host: SIGTERM (it writes its statistics on the way out), then what went wrong, if anything.
    func stopHost(_ host: ChildProcess, log: URL, statistics: URL) -> [String] {
        var errors: [String] = []
        let status = host.terminate(grace: 15)
        if let data = try? Data(contentsOf: statistics) {
            lock.withLock { results[0].hostStatisticsJSON = String(decoding: data, as: UTF8.self) }
        } else {
            errors.append("vpio-host wrote no statistics to \(statistics.path)")
        }
        if let status, status != 0 {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            errors.append("vpio-host exited with status \(status)")
            progress.line("vpio-host log (last lines):\n\(text.split(separator: "\n").suffix(15).joined(separator: "\n"))")
        }
        return errors
    }

    // MARK: - Guests, the host and faults

    /// How vpio-host is started (again, after `restart-host`).
    struct HostLaunch {
        var argv: [String]
        var socket: String
        var directory: URL
    }

    /// What every guest of the run shares: the QEMU line's fixed parts.
    struct GuestBoot {
        var installation: QEMUInstallation
        /// By guest slot.
        var nics: [GuestNIC]
        var prefix: [String]
        /// The served files' SHA-256, by guest slot.
        var checksums: [String]
        var directory: URL
        /// The run's overall deadline.
        var deadline: Date
    }

    /// One running guest: its slot (which result it fills), its boot number, its QEMU, the console
    /// reader, QEMU's stderr log.
    struct Guest {
        var slot: Int
        var index: Int
        var process: ChildProcess
        var reader: ConsoleReader
        var log: URL
    }

    /// The processes of a run that a fault may replace.
    final class RunParts {
        var guests: [Guest]
        var host: ChildProcess?
        var hostLog: URL
        let hostLaunch: HostLaunch?
        let servers: PeerServers
        let tapName: String

        init(guests: [Guest], host: ChildProcess?, hostLaunch: HostLaunch?, servers: PeerServers, tapName: String) {
            self.guests = guests
            self.host = host
            self.hostLaunch = hostLaunch
            self.servers = servers
            self.tapName = tapName
            hostLog = (hostLaunch?.directory ?? URL(fileURLWithPath: "/")).appendingPathComponent("vpio-host.log")
        }
    }

    /// What serves the guest's NIC.
    struct NICProvider {
        /// One per guest slot.
        var nics: [GuestNIC]
        var tapName: String
        var host: ChildProcess?
        var hostLaunch: HostLaunch?
        /// What QEMU runs under (`ip netns exec` for QEMU's in-process NIC).
        var qemuPrefix: [String]
    }

    /// Starts vpio-host with its output in `logName` and waits for its socket.
    func startHost(_ launch: HostLaunch, logName: String, session: RunSession) throws -> ChildProcess {
        let log = launch.directory.appendingPathComponent(logName)
        let child = try ChildProcess(name: "vpio-host", argv: launch.argv, stdout: .file(log), stderr: .file(log))
        logger.debug("starting vpio-host", metadata: ["argv": "\(child.argv.joined(separator: " "))"])
        try child.start(step: "start vpio-host")
        session.cleanup.push("stop vpio-host") { child.terminate(grace: 10) }
        try waitForSocket(launch.socket, host: child, log: log, session: session)
        progress.line("vpio-host listening on \(launch.socket)")
        return child
    }

    /// Boots guest number `index` (1 first; its console is prefixed `guestN| ` after the first, its
    /// stderr goes to qemu.log, qemu-N.log) in `slot` running `workloads`, with what is left of the run's time.
    func bootGuest(_ boot: GuestBoot, workloads: [String], slot: Int, index: Int, session: RunSession) throws -> Guest {
        let c = configuration
        var parameters = GuestParameters(file: ServedFiles.name(size: c.downloadSize(slot: slot)), sha256: boot.checksums[slot], workloads: workloads)
        parameters.address = "\(c.guestAddress(slot: slot))/\(c.prefixLength)"
        parameters.peer = c.peerAddress
        parameters.httpPort = c.httpPort
        parameters.sshPort = c.sshPort
        parameters.receiveBuffer = c.receiveBuffer
        parameters.agent = c.agent
        parameters.agentPublishInterval = c.agentPublishInterval
        parameters.nicDriver = c.nicDriver
        let left = boot.deadline.timeIntervalSinceNow
        parameters.deadline = max(30, Int(left) - 10)
        parameters.workloadTimeout = c.workloadTimeout ?? max(20, Int(left) - 30)
        var line = QEMUCommandLine(installation: boot.installation, program: program(parameters), nic: boot.nics[slot])
        line.accelerator = c.accelerator
        let log = boot.directory.appendingPathComponent(index == 1 ? "qemu.log" : "qemu-\(index).log")
        let process = try ChildProcess(name: "qemu", argv: boot.prefix + line.argv, stdout: .pipe, stderr: .file(log))
        // The command line as a shell line beside its log: what to rerun by hand, and what the tests hold
        // against `vpio-host --print-qemu-args`.
        let commandLine = process.argv.map(VFIOUserQEMUOptions.shellQuoted).joined(separator: " ") + "\n"
        try? Data(commandLine.utf8).write(to: boot.directory.appendingPathComponent(index == 1 ? "qemu.cmdline" : "qemu-\(index).cmdline"))
        logger.debug("starting QEMU", metadata: ["argv": "\(process.argv.joined(separator: " "))"])
        progress.line("booting \(index == 1 ? "the guest" : "guest \(index)") (\(boot.installation), \(c.accelerator.rawValue), "
                      + "timeout \(Int(left)) s)")
        try session.checkInterrupted("start QEMU")
        try process.start(step: "start QEMU")
        session.cleanup.push("stop QEMU") { process.terminate(grace: 3) }
        session.trap.onInterrupt { process.signal(SIGTERM) }
        lock.withLock { doneSeenAt[slot] = nil }
        let prefix = index == 1 ? c.consolePrefix : "guest\(index)| "
        return Guest(slot: slot, index: index, process: process, reader: startConsoleReader(process, prefix: prefix, slot: slot), log: log)
    }

    /// An iPXE guest's download, judged on the host once the guest is gone (the peer and the TAP still up).
    func verifyIPXEDownload(servers: PeerServers, tapName: String) {
        let c = configuration
        guard c.guest == .ipxe, c.workloads.contains("download") else { return }
        let log = (try? String(contentsOf: servers.httpLog, encoding: .utf8)) ?? ""
        let peerBytes = servers.bytesSent(on: tapName)
        lock.withLock {
            results[0].download = ipxeDownload.verdict(file: ServedFiles.name(size: c.size), size: c.size, httpLog: log, peerBytesSent: peerBytes)
        }
    }

    /// The guest's program: Linux reads `parameters` from its command line; iPXE gets the same facts as
    /// its script.
    func program(_ parameters: GuestParameters) -> GuestProgram {
        let c = configuration
        switch c.guest {
        case .linux:
            return .linux(kernel: c.layout.kernel, initramfs: c.layout.initramfs, arguments: parameters.kernelArguments)
        case .debian12, .debian13:
            let image = DebianGuestImage(layout: c.layout, suite: c.guest.debianSuite ?? .bookworm)
            // The agent comes from the installed package; without one asked for, systemd must not start it.
            let mask = c.agent == nil ? ["systemd.mask=vpio-agent.service"] : []
            return .disk(image, arguments: mask + parameters.kernelArguments)
        case .ipxe:
            let script = IPXEScript(address: c.guestAddress, netmask: Self.netmask(prefixLength: c.prefixLength), peer: c.peerAddress,
                                    httpPort: c.httpPort, file: parameters.workloads.contains("download") ? parameters.file : nil)
            return .ipxe(image: c.layout.ipxeKernel, script: script.text)
        }
    }

    /// 24 → 255.255.255.0.
    static func netmask(prefixLength: Int) -> String {
        let bits = prefixLength <= 0 ? UInt32(0) : UInt32.max << UInt32(32 - min(prefixLength, 32))
        return (0..<4).map { String((bits >> UInt32(24 - 8 * $0)) & 0xFF) }.joined(separator: ".")
    }

    /// Waits while the guest runs, injecting the fault when it is due. Returns whether the run timed out.
    func supervise(_ parts: RunParts, injector: FaultInjector?, boot: GuestBoot, started: Date, session: RunSession) throws -> Bool {
        while parts.guests.contains(where: { $0.process.isRunning }) {
            if session.trap.interrupted { return false }
            if Date() >= boot.deadline { return true }
            for guest in parts.guests where guest.process.isRunning {
                if let seen = lock.withLock({ doneSeenAt[guest.slot] }), Date().timeIntervalSince(seen) > 15 {
                    logger.notice("guest \(guest.slot + 1) reported done but QEMU did not exit; stopping it")
                    guest.process.terminate(grace: 3)
                }
            }
            if let host = parts.host, !host.isRunning {
                lock.withLock { results[0].hostErrors.append("vpio-host exited during the run with status \(host.exitStatus ?? -1)") }
                return false
            }
            if let injector, injector.isDue(peerBytes: parts.servers.bytesSent(on: parts.tapName), runStarted: started) {
                try inject(injector, parts: parts, boot: boot, session: session)
            }
            usleep(50_000)
        }
        if let injector, injector.hasFired {
            injector.qemuExited(status: parts.guests[0].process.exitStatus)
            injector.note("QEMU of guest \(parts.guests[0].index) exited with status \(parts.guests[0].process.exitStatus ?? -1)")
        }
        return false
    }

    /// Performs the due fault.
    func inject(_ injector: FaultInjector, parts: RunParts, boot: GuestBoot, session: RunSession) throws {
        let fault = injector.fault
        progress.line("fault \(fault.kind.rawValue): the peer has sent \(injector.report.peerBytes ?? 0) bytes")
        switch fault.kind {
        case .killQEMU:
            let old = parts.guests[0]
            old.process.signal(SIGKILL)
            old.process.wait(timeout: 10)
            old.reader.wait(timeout: 5)
            injector.qemuExited(status: old.process.exitStatus)
            injector.note("QEMU of guest \(old.index) killed, exit status \(old.process.exitStatus ?? -1)")
            parts.guests[0] = try bootGuest(boot, workloads: fault.restartWorkloads, slot: 0, index: 2, session: session)
            injector.guestBooted()
            injector.note("guest 2 booting on the same vpio-host")
        case .restartHost:
            guard let host = parts.host, let launch = parts.hostLaunch else {
                injector.note("no vpio-host to restart")
                return
            }
            host.signal(SIGKILL)
            host.wait(timeout: 10)
            injector.note("vpio-host killed, exit status \(host.exitStatus ?? -1)")
            // The killed host leaves its socket file; without it the wait below sees the new one.
            try? FileManager.default.removeItem(atPath: launch.socket)
            parts.host = try startHost(launch, logName: "vpio-host-2.log", session: session)
            parts.hostLog = launch.directory.appendingPathComponent("vpio-host-2.log")
            injector.note("vpio-host restarted on \(launch.socket)")
        case .killHTTP:
            let status = try parts.servers.restartHTTP()
            injector.note("httpd killed, exit status \(status ?? -1); a new httpd listens")
        }
    }

    // MARK: - Pieces

    /// Waits for vpio-host's socket file; fails with its log when it exits first or takes too long.
    func waitForSocket(_ path: String, host: ChildProcess, log: URL, session: RunSession) throws {
        let deadline = Date().addingTimeInterval(configuration.hostStartTimeout)
        while !FileManager.default.fileExists(atPath: path) {
            try session.checkInterrupted("wait for vpio-host")
            if !host.isRunning {
                host.wait(timeout: 1)
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw StepError(
                    step: "start vpio-host",
                    reason: "exited with status \(host.exitStatus ?? -1) before creating \(path); its output:\n\(text.suffix(2000))")
            }
            if Date() >= deadline {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw StepError(
                    step: "start vpio-host",
                    reason: "no socket at \(path) after \(Int(configuration.hostStartTimeout)) s; its output:\n\(text.suffix(2000))")
            }
            usleep(20_000)
        }
    }

    /// Reads QEMU's stdout (the guest console) line by line on a thread: echoes each line with the prefix
    /// and folds `VPIO-RESULT` lines into the result.
    func startConsoleReader(_ qemu: ChildProcess, prefix: String, slot: Int) -> ConsoleReader {
        let reader = ConsoleReader()
        guard let handle = qemu.standardOutput else { reader.finish(); return reader }
        let echo = configuration.echoConsole
        let thread = Thread { [self] in
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let lineData = pending[pending.startIndex..<newline]
                    pending.removeSubrange(pending.startIndex...newline)
                    consume(String(decoding: lineData, as: UTF8.self), echo: echo, prefix: prefix, slot: slot)
                }
            }
            if !pending.isEmpty { consume(String(decoding: pending, as: UTF8.self), echo: echo, prefix: prefix, slot: slot) }
            reader.finish()
        }
        thread.name = "vpio-console"
        thread.start()
        return reader
    }

    private func consume(_ raw: String, echo: Bool, prefix: String, slot: Int) {
        let line = raw.replacingOccurrences(of: "\r", with: "")
        if echo { FileHandle.standardOutput.write(Data((prefix + line + "\n").utf8)) }
        if let summary = AgentSummary.parse(line) {
            lock.withLock { results[slot].agentSummary = summary }
            return
        }
        if configuration.guest == .ipxe { lock.withLock { ipxeDownload.observe(line, at: Date()) } }
        guard let parsed = ResultLine.parse(line) else { return }
        lock.withLock {
            results[slot].apply(parsed)
            if parsed.kind == "done" { doneSeenAt[slot] = Date() }
        }
    }
}

/// Signals the end of the console stream.
final class ConsoleReader: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func finish() { semaphore.signal() }
    @discardableResult
    func wait(timeout: TimeInterval) -> Bool { semaphore.wait(timeout: .now() + timeout) == .success }
}

/// A value shared with a signal callback.
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// The run's directory (socket, logs, statistics): kept when the run failed or threw, unless the run
/// decides otherwise at its end.
final class RunDirectory: @unchecked Sendable {
    let url: URL
    var keep = true
    init(url: URL) { self.url = url }
    var hostStatistics: URL { url.appendingPathComponent("vpio-host-stats.json") }
}

/// What every step of a run shares: the cleanups each registers, the signal trap, and the namespace an
/// emergency exit (a second signal) must still delete.
final class RunSession {
    let cleanup: CleanupStack
    let trap: SignalTrap
    private let namespace = LockedBox<NetworkNamespace?>(nil)

    init(logger: Logger) {
        let namespace = self.namespace
        trap = SignalTrap(emergency: { if let namespace = namespace.value { try? namespace.delete(grace: 0.5) } })
        trap.onInterrupt { Supervisor.shared.interruptAll() }
        cleanup = CleanupStack(logger: logger)
    }

    /// The namespace goes at the end of the run, or at once on an emergency exit.
    func adopt(_ created: NetworkNamespace) {
        namespace.value = created
        cleanup.push("delete network namespace \(created.name)") { try created.delete() }
    }

    func checkInterrupted(_ step: String) throws {
        if trap.interrupted { throw StepError.interrupted(step: step) }
    }

    /// Every cleanup, in reverse; then the default signal dispositions.
    func end() {
        cleanup.runAll()
        trap.cancel()
    }
}
