import ArgumentParser
import DeviceSharing
import Foundation
import Supervision
import Logging
import VPIOLaunch
import VPIOMonitor
import VPIOProvision

/// Which NIC the guest gets.
enum NICChoice: String, ExpressibleByArgument, CaseIterable {
    case vpioHost = "vpio-host"
    case qemuNE2K = "qemu-ne2k"
    case qemuRTL8139 = "qemu-rtl8139"
}

extension Accelerator: ExpressibleByArgument {}
extension RunConfiguration.GuestKind: ExpressibleByArgument {}
extension FaultInjection.Kind: ExpressibleByArgument {}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Boot the test guest on a NIC served by vpio-host and run workloads against a local peer.",
        discussion: """
            Steps: delete stale vpio-<pid> network namespaces; provision if the cache is incomplete; create \
            namespace vpio-<pid>; start vpio-host (it creates the TAP there with the peer address and listens \
            on a vfio-user socket); start the peer's HTTP and ssh servers in the namespace; boot QEMU with \
            vfio-user-pci; stream the guest console (prefixed "guest| ") and parse its VPIO-RESULT lines; then \
            stop everything and delete the namespace, also on errors and Ctrl-C.

            Workloads: download (HTTP GET of a deterministic file, SHA-256 checked in the guest) and ssh \
            (dbclient runs `echo vpio-ssh-ok $(uname -n) $(id -u)` on the peer), ssh-session (one dbclient login \
            running 40 short commands fed over stdin, paced like typing, each output marker checked; then logout) \
            and none (boot, load the driver, bring eth0 up: the baseline).

            --nic qemu-ne2k runs the same guest on QEMU's own in-process ne2k_pci on a TAP in the namespace \
            instead (no vpio-host): the reference configuration.

            --device rtl8139 serves an RTL8139C instead of the NE2000: a bus master whose DMA reaches guest memory \
            (the receive ring, four transmit buffers), checked at each transmit start and ring setup. The guest \
            loads 8139too with use_io=1 (port I/O; --mmio: its default MMIO mode, where every access to the \
            register page traps in every mode that hooks one). Modes: emulated, vmm-model, cooperative, \
            passthrough. The agent runs by default with use_io=1: it probes 8139too's calls to the kernel's \
            ioread/iowrite accessors and announces each transmit and ring setup, which the host matches with \
            what it finds (it judges from the device's registers either way; not with --mmio, whose register \
            offsets the agent cannot tell). --nic qemu-rtl8139 is QEMU's own rtl8139, which \
            reports an 8139C+ (revision 0x20) that 8139too refuses: the guest drives it with 8139cp (MMIO, C+ \
            descriptor mode).

            --guest ipxe boots iPXE (Debian's ipxe package) instead of Linux: its ns8390 driver, polling with \
            its own register sequences. Its workloads are download (iPXE fetches the file, then a completion \
            marker; verified on the host: iPXE's own completion, the size its imgstat prints, the peer's \
            httpd log and the bytes the peer's link sent) and none.

            Exit status: 0 when every workload succeeded, 1 when one failed, 2 when the run could not be set \
            up, 130 when interrupted.
            """)

    @OptionGroup var cache: CacheOptions

    @Option(help: ArgumentHelp("Comma-separated workloads to run in the guest, in order (default: download,ssh; with --guest ipxe: download).",
                               valueName: "list"))
    var workloads: String?

    @Option(help: """
        What the guest runs: linux (the test initramfs: ne2k-pci, the agent available), ipxe (its ns8390 driver), \
        debian12 or debian13 (a full Debian system with systemd, kernel 6.1 or 6.12, the agent installed from its \
        .deb and started by systemd; built by `vpio provision` on first use).
        """)
    var guest: RunConfiguration.GuestKind = .linux

    @Option(help: ArgumentHelp("Size of the downloaded file (K/M/G suffixes).", valueName: "bytes"))
    var size = ByteSize(bytes: ServedFiles.defaultSize)

    @Option(help: "QEMU accelerator (tcg on this machine kind; kvm on real hosts).")
    var accel: Accelerator = .tcg

    @Option(help: "Where the guest's NIC comes from.")
    var nic: NICChoice = .vpioHost

    @Option(help: "The NIC behind vpio-host: ours (our NE2000), qemu-ne2k (QEMU's ne2k_pci in a device-only QEMU over qtest; the monitors and the ledger unchanged), or rtl8139 (our RTL8139C, a bus master).")
    var device = "ours"

    @Flag(help: "With --device rtl8139: the guest's 8139too in its default MMIO mode instead of use_io=1.")
    var mmio = false

    @Option(help: ArgumentHelp("The vpio-host executable (default: beside this vpio).", valueName: "path"))
    var hostBinary: String?

    @Option(help: ArgumentHelp("Overall limit for the guest run in seconds.", valueName: "seconds"))
    var timeout = 300

    @Option(help: ArgumentHelp("Cap the guest's TCP receive buffer (bytes, K/M suffixes).", valueName: "bytes"))
    var rmem: ByteSize?

    @Flag(inversion: .prefixedNo, help: ArgumentHelp(
        "Start the guest agent (vpio-agent: eBPF probes on the driver) after the driver loads; it registers its ring with vpio-host "
            + "(default: on for a Linux guest on vpio-host, so cooperative mode runs as designed; --no-agent: none, and "
            + "cooperative falls back to vmm-model at the first DMA start)."))
    var agent: Bool?

    @Flag(help: "Start the guest agent without registering its ring (attach and count only; prints its summary on the console).")
    var agentNoRegister = false

    @Option(help: ArgumentHelp("With --agent: its heartbeat/state interval in the ring (default 1; a short one stresses the host's ring reader).",
                               valueName: "seconds"))
    var agentPublishEvery: Double?

    @Flag(help: "Keep the run directory (vpio-host, QEMU and server logs, stats JSON) even on success.")
    var keepLogs = false

    @Flag(help: "Fail instead of provisioning when the cache is incomplete.")
    var noProvision = false

    @Option(help: ArgumentHelp("Also write the parsed result as JSON to this file.", valueName: "path"))
    var resultJson: String?

    @Option(help: "vpio-host: the enforced mode (emulated, vmm-model, cooperative, on-demand, passthrough); all five are counted.")
    var mode: Mode = .cooperative

    @Option(help: ArgumentHelp("vpio-host: record the guest's access stream to this trace file.", valueName: "path"))
    var record: String?

    @Option(help: ArgumentHelp("vpio-host: also keep the exit ledger JSON in this file.", valueName: "path"))
    var ledgerJson: String?

    @Option(help: ArgumentHelp("Per-workload timeout inside the guest, seconds (default: what --timeout leaves).", valueName: "seconds"))
    var workloadTimeout: Int?

    @Option(help: ArgumentHelp(
        "Inject a fault once the peer has sent --fault-after bytes (the download is under way): kill-qemu (SIGKILL QEMU, "
            + "then boot a new guest running --restart-workloads on the same vpio-host), restart-host (SIGKILL vpio-host "
            + "and start it again on the same socket), kill-http (SIGKILL the peer's httpd and start it again).",
        valueName: "fault"))
    var fault: FaultInjection.Kind?

    @Option(help: ArgumentHelp("With --fault: the bytes the peer's link sends before the fault fires (K/M suffixes).", valueName: "bytes"))
    var faultAfter = ByteSize(bytes: 256 << 10)

    @Option(help: ArgumentHelp("With --fault kill-qemu: the workloads of the guest booted after the kill.", valueName: "list"))
    var restartWorkloads = "download"

    @Option(help: ArgumentHelp(
        "Guests sharing one vpio-host and its one NE2000 (issue 14): each boots at once with its own address (10.77.0.2, .3, …), "
            + "MAC and served file (--size plus 4 KiB per guest), runs --workloads, and is checked on its own.", valueName: "n"))
    var guests = 1

    @Option(help: ArgumentHelp("With --guests: guest N's own workloads, N=LIST (N from 1); repeat for each such guest.", valueName: "n=list"))
    var guestWorkloads: [String] = []

    @Option(help: ArgumentHelp("With --guests: guest N's own enforced mode, N=MODE (N from 1; the others take --mode); repeat for each.",
                               valueName: "n=mode"))
    var guestMode: [String] = []

    /// --guest-mode by slot (from 0); nil when an entry does not parse.
    var modesBySlot: [Int: Mode]? {
        var bySlot: [Int: Mode] = [:]
        for entry in guestMode {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let n = Int(parts[0]), (1...guests).contains(n), let mode = Mode(rawValue: String(parts[1])) else { return nil }
            bySlot[n - 1] = mode
        }
        return bySlot
    }

    /// --guest-workloads by slot (from 0).
    var workloadsBySlot: [Int: [String]] {
        var bySlot: [Int: [String]] = [:]
        for entry in guestWorkloads {
            let parts = entry.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let n = Int(parts[0]) { bySlot[n - 1] = parts[1].split(separator: ",").map(String.init) }
        }
        return bySlot
    }

    /// Whether the guest runs the agent: --agent/--no-agent, else wherever it can register (Linux on vpio-host).
    var runsAgent: Bool { agentNoRegister || (agent ?? (guest != .ipxe && nic == .vpioHost && !mmio)) }

    /// Whether the guest's NIC is an RTL8139 (ours behind vpio-host, or QEMU's).
    var isRTL8139: Bool { device == "rtl8139" || nic == .qemuRTL8139 }

    /// --workloads, or the guest's default.
    var workloadList: [String] {
        (workloads ?? (guest == .ipxe ? "download" : "download,ssh")).split(separator: ",").map(String.init)
    }

    func validate() throws {
        let list = workloadList
        guard !list.isEmpty else { throw ValidationError("--workloads must name at least one workload") }
        let restart = restartWorkloads.split(separator: ",").map(String.init)
        let known = guest.workloads
        for workload in list + restart where !known.contains(workload) {
            throw ValidationError("unknown workload '\(workload)' for --guest \(guest.rawValue) (known: \(known.joined(separator: ", ")))")
        }
        if guest == .ipxe, agent == true || agentNoRegister { throw ValidationError("the agent runs in the Linux guest only (not with --guest ipxe)") }
        if guest.debianSuite != nil, agentNoRegister || agentPublishEvery != nil {
            throw ValidationError("--guest \(guest.rawValue) runs the packaged agent as installed: no --agent-no-register or --agent-publish-every")
        }
        if agent == false, agentNoRegister { throw ValidationError("--no-agent and --agent-no-register contradict each other") }
        if list.contains("kill-agent") && (!runsAgent || agentNoRegister) { throw ValidationError("the kill-agent workload needs the registered agent (not --no-agent)") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if let agentPublishEvery {
            guard runsAgent else { throw ValidationError("--agent-publish-every needs the agent (not --no-agent)") }
            guard agentPublishEvery >= 0.001, agentPublishEvery.isFinite else {
                throw ValidationError("--agent-publish-every must be at least 0.001 seconds")
            }
        }
        guard ["ours", "qemu-ne2k", "rtl8139"].contains(device) else { throw ValidationError("--device must be ours, qemu-ne2k or rtl8139") }
        if isRTL8139 { try validateRTL8139() } else if mmio { throw ValidationError("--mmio is for --device rtl8139") }
        if mmio, nic == .qemuRTL8139 { throw ValidationError("--mmio: QEMU's rtl8139 is driven by 8139cp, which uses MMIO anyway") }
        if !isRTL8139, let attack = workloadList.first(where: { $0.hasPrefix("rogue8139-") }) {
            throw ValidationError("\(attack) attacks an RTL8139: it needs --device rtl8139")
        }
        if device != "ours", nic != .vpioHost { throw ValidationError("--device \(device) is vpio-host's backend: it needs --nic vpio-host") }
        if let fault, fault != .killHTTP, nic != .vpioHost { throw ValidationError("--fault \(fault.rawValue) needs --nic vpio-host") }
        guard (1...4).contains(guests) else { throw ValidationError("--guests must be 1 to 4") }
        guard workloadsBySlot.count == guestWorkloads.count, workloadsBySlot.keys.allSatisfy({ (0..<guests).contains($0) }) else {
            throw ValidationError("--guest-workloads takes N=LIST with N from 1 to --guests")
        }
        for workload in workloadsBySlot.values.joined() where !known.contains(workload) {
            throw ValidationError("unknown workload '\(workload)' in --guest-workloads (known: \(known.joined(separator: ", ")))")
        }
        if !guestMode.isEmpty, guests == 1 { throw ValidationError("--guest-mode needs --guests 2 or more (one guest: --mode)") }
        guard modesBySlot != nil else {
            throw ValidationError("--guest-mode takes N=MODE with N from 1 to --guests and MODE one of "
                                  + Mode.allCases.map(\.rawValue).joined(separator: ", "))
        }
        if guests > 1 {
            guard nic == .vpioHost, device == "ours", guest == .linux, fault == nil else {
                throw ValidationError("--guests needs --nic vpio-host, --device ours, --guest linux and no --fault")
            }
        }
    }

    func validateRTL8139() throws {
        guard guest == .linux else { throw ValidationError("an RTL8139 runs with --guest linux (the test initramfs has 8139too)") }
        guard !mmio || (agent != true && !agentNoRegister) else {
            throw ValidationError("the agent shadows 8139too's port I/O (use_io=1) only: no --agent with --mmio")
        }
        guard nic != .qemuRTL8139 || (agent != true && !agentNoRegister) else {
            throw ValidationError("the agent registers with vpio-host only: no --agent with --nic qemu-rtl8139")
        }
        guard mode != .onDemand else { throw ValidationError("the RTL8139 has no on-demand mode: its DMA reaches guest memory, which a guest never owns wholly") }
        guard guests == 1, fault == nil, record == nil else { throw ValidationError("an RTL8139 serves one guest, without --fault or --record") }
        let attacks = workloadList.filter { !["download", "ssh", "ssh-session", "none"].contains($0) && !$0.hasPrefix("rogue8139-") }
        guard attacks.isEmpty else { throw ValidationError("workloads \(attacks.joined(separator: ", ")) are the NE2000's") }
    }

    func run() throws {
        cache.bootstrapLogging()
        guard geteuid() == 0 else { throw fail(StepError(step: "run", reason: "must run as root (network namespaces, TAP)")) }
        let result: RunResult
        do {
            let layout = try cache.layout()
            let mode: RunConfiguration.NICMode
            switch nic {
            case .vpioHost: mode = .vpioHost(binary: hostExecutable(), extraArguments: hostLedgerArguments())
            case .qemuNE2K: mode = .qemuNE2K
            case .qemuRTL8139: mode = .qemu(.rtl8139)
            }
            var configuration = RunConfiguration(layout: layout, nic: mode)
            configuration.workloads = workloadList
            configuration.guest = guest
            configuration.size = size.bytes
            configuration.accelerator = accel
            configuration.timeout = TimeInterval(timeout)
            configuration.keepLogs = keepLogs
            configuration.provisionIfNeeded = !noProvision
            configuration.receiveBuffer = rmem?.bytes
            if runsAgent { configuration.agent = agentNoRegister ? .observe : .register }
            configuration.agentPublishInterval = agentPublishEvery
            configuration.workloadTimeout = workloadTimeout
            configuration.guests = guests
            configuration.guestWorkloads = workloadsBySlot
            configuration.guestModes = (modesBySlot ?? [:]).mapValues(\.rawValue)
            if isRTL8139 { configuration.nicDriver = nic == .qemuRTL8139 ? .rtl8139CPlus : mmio ? .rtl8139MMIO : .rtl8139 }
            configuration.fault = fault.map {
                FaultInjection(kind: $0, afterPeerBytes: faultAfter.bytes, restartWorkloads: restartWorkloads.split(separator: ",").map(String.init))
            }
            result = try ExperimentRunner(configuration: configuration).run()
        } catch let error as StepError where error.isInterruption {
            FileHandle.standardError.write(Data("vpio: \(error)\n".utf8))
            throw ExitCode(130)
        } catch {
            throw fail(error)
        }
        for line in result.summary { print("[run] \(line)") }
        if let report = result.fault { for line in report.summary { print("[run] \(line)") } }
        if nic == .vpioHost {
            printLedger()
            printEnforcement(result.hostStatisticsJSON)
        }
        printAgent(result)
        if let resultJson {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(result).write(to: URL(fileURLWithPath: resultJson))
        }
        if !result.succeeded { throw ExitCode(1) }
    }

    /// Where vpio-host writes its ledger: --ledger-json, else a file this run reads and removes.
    var ledgerPath: String {
        ledgerJson.map { URL(fileURLWithPath: $0).path } ?? NSTemporaryDirectory() + "vpio-ledger-\(getpid()).json"
    }

    func hostLedgerArguments() -> [String] {
        ["--mode", mode.rawValue, "--ledger-json", ledgerPath, "--device", device]
            + (record.map { ["--record", URL(fileURLWithPath: $0).path] } ?? [])
    }

    /// The exit ledger vpio-host wrote at exit (one per guest of a shared device), as a table.
    func printLedger() {
        let paths = guests == 1 ? [("", ledgerPath)] : (1...guests).map { ("g\($0) ", PerGuestFile.path(ledgerPath, guest: "g\($0)")) }
        for (label, path) in paths {
            defer { if ledgerJson == nil { try? FileManager.default.removeItem(atPath: path) } }
            guard let data = FileManager.default.contents(atPath: path),
                  let ledger = try? JSONDecoder().decode(ExitLedger.self, from: data) else {
                print("[run] \(label)exit ledger: vpio-host wrote none")
                continue
            }
            for line in ledger.table { print("[run] \(label)ledger \(line)") }
        }
    }


    /// What the enforcing mode did (the ledger's `*` marks the configured mode; this is what happened);
    /// for a shared device, each guest's and the switches.
    func printEnforcement(_ statistics: String?) {
        guard let statistics, let data = statistics.data(using: .utf8) else { return }
        if let rtl = try? JSONDecoder().decode(RTL8139StatisticsView.self, from: data), rtl.device == "rtl8139" {
            print("[run] enforcement (rtl8139): \(rtl.enforced) enforced; \(rtl.denied) writes denied, \(rtl.receivesDenied) frames refused "
                  + "(ring not permitted), device: \(rtl.nic.transmitsRefused) transmits and \(rtl.nic.receivesRefused) receives outside guest memory, "
                  + "\(rtl.dmaWithoutBusMaster) DMA attempts without bus mastering")
            let check = rtl.agentCheck
            print("[run] agent check (rtl8139): \(check.starts) DMA starts matched against the agent's intents: \(check.intents.hits) hits, "
                  + "\(check.intents.misses) missing, \(check.intents.mismatches) different, \(check.accessCountMismatches) access-count "
                  + "mismatches; \(check.findings) findings\(check.firstFinding.map { " (first: \($0))" } ?? "")")
        } else if let stats = try? JSONDecoder().decode(HostEnforcement.self, from: data) {
            printEnforcement(stats.enforcement, label: "")
        } else if let shared = try? JSONDecoder().decode(SharedStatisticsView.self, from: data) {
            let reasons = shared.switches.byReason.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            print("[run] sharing: \(shared.switches.total) switches (\(reasons)), \(Int(shared.switches.accessesMean)) device accesses "
                  + "and \(Int(shared.switches.microsecondsMedian)) µs per switch, \(shared.spoofedFrames) spoofed frames dropped")
            for (name, guest) in shared.guests.sorted(by: { $0.key < $1.key }) {
                print("[run] \(name) sharing: switched in \(guest.switchesIn) times, \(guest.holds.count) accesses held "
                      + String(format: "(median %.1f ms, max %.1f ms)", guest.holds.p50 / 1000, guest.holds.max / 1000))
                printEnforcement(guest.host.enforcement, label: "\(name) ")
            }
        }
    }

    private func printEnforcement(_ e: HostEnforcement.Enforcement, label: String) {
        let fallbacks = e.switches.filter { $0.kind == "fallback" }.count
        print("[run] \(label)enforcement: configured \(e.configured), now \(e.current); \(e.dmaStarts) DMA starts, \(e.denied) denied, "
              + (fallbacks == 0 ? "no fallback" : "\(fallbacks) fallbacks"))
        for change in e.switches {
            print("[run] \(label)enforcement: at access \(change.access) \(change.from) → \(change.to) (\(change.kind)): \(change.reason)")
        }
        for violation in e.violations {
            print("[run] \(label)violation: \(violation.kind) at 0x\(String(violation.start, radix: 16)) in \(violation.mode): \(violation.reason)")
        }
    }

    /// The agent's summary of each guest that ran it (what it attached, registered and announced), or why none ran.
    func printAgent(_ result: RunResult) {
        guard runsAgent else {
            if isRTL8139, nic == .vpioHost {
                print("[run] agent: none (\(mmio ? "it shadows 8139too's port I/O only" : "--no-agent")): the host checks each DMA start against the device's own registers")
            } else if guest != .ipxe, nic == .vpioHost {
                print("[run] agent: none (--no-agent): cooperative judges without reports and falls back")
            }
            return
        }
        let guests = [result] + result.otherGuests
        for (index, guestResult) in guests.enumerated() {
            let label = guests.count > 1 ? "g\(index + 1) " : ""
            guard let summary = guestResult.agentSummary else {
                print("[run] \(label)agent: no summary on the console (it did not start or did not stop cleanly)")
                continue
            }
            let field = { (key: String) in summary[key] ?? "?" }
            // The RTL8139's intents include ring setups, which only the model counts with them.
            let starts = isRTL8139 ? "\(field("model_dma_starts")) DMA starts and ring setups" : "\(field("dma_starts")) DMA starts"
            print("[run] \(label)agent: registration \(field("registration")), \(field("attached"))/\(field("sites")) probe sites attached, "
                  + "\(field("events")) probe hits, \(field("intents")) DMA intents for \(starts), "
                  + "\(field("lost")) events lost, \(field("bpf_run_ns_per_hit")) ns BPF run time per hit (under \(accel.rawValue))")
        }
    }

    /// `--host-binary`, else `vpio-host` in the folder of this executable.
    func hostExecutable() -> URL {
        hostBinary.map { URL(fileURLWithPath: $0) } ?? siblingExecutable("vpio-host")
    }
}

/// The part of vpio-host's statistics JSON that `vpio run` prints.
struct HostEnforcement: Decodable {
    struct Switch: Decodable { var access: Int; var from: String; var to: String; var kind: String; var reason: String }
    struct Violation: Decodable { var mode: String; var kind: String; var start: Int; var reason: String }
    struct Enforcement: Decodable {
        var configured: String
        var current: String
        var dmaStarts: Int
        var denied: Int
        var switches: [Switch]
        var violations: [Violation]
    }

    var enforcement: Enforcement
}

/// The part of a shared vpio-host's statistics JSON that `vpio run` and `vpio share-bench` print.
struct SharedStatisticsView: Decodable {
    struct Switches: Decodable {
        var total: Int
        var byReason: [String: Int]
        var accessesMean: Double
        var microsecondsMedian: Double
    }
    struct Guest: Decodable {
        struct Holds: Decodable { var count: Int; var p50: Double; var p90: Double; var max: Double }
        var host: HostEnforcement
        var switchesIn: Int
        var holds: Holds
    }
    var switches: Switches
    var guests: [String: Guest]
    var spoofedFrames: Int
}
