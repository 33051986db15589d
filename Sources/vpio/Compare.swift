import ArgumentParser
import DeviceSharing
import Foundation
import Supervision
import KVMProbe
import VPIOAgentCore
import VPIOCompare
import VPIOLaunch
import VPIOMonitor
import VPIOProvision

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The seed's experiment reproduced: every workload in fresh guests, exits of all five modes, measured costs.",
        discussion: """
            Each run boots a fresh guest on vpio-host (with the guest agent unless --no-agent) and runs one \
            workload; vpio-host's exit ledger gives the exact exits of every mode for that run. Scenarios: ssh \
            (one dropbear session, 40 short commands with output, logout; every marker checked), small download \
            (--small-size, SHA-256 checked), large download (--large-size, SHA-256 checked) and, unless \
            --no-baseline, boot only (no workload: what every run spends before and after its workload); then, \
            unless --no-ipxe, the small and large download again with the second driver, iPXE's ns8390 (checked \
            on the host), beside the seed's Windows rows; and, unless --no-shared, a shared download: two guests             downloading --small-size (and 4 KiB more) at once through one vpio-host and its one NE2000, guest 1's             ledger in the table — where on-demand's trap is armed for the switches (with one guest it never is); \
            and, unless --no-rtl8139, ssh, small and large download on the RTL8139 (8139too, port I/O, with the agent).

            Costs: a port-I/O exit round trip is measured once on /dev/kvm (as `vpio exit-cost`; or read from \
            --exit-cost-json), the models' ns per update by the model benchmark over the access trace recorded \
            in the first large download. Estimated overhead per MiB = (exits × exit cost + model updates × \
            model cost) / MiB moved.

            Writes to --out: compare.json, compare.csv, exits-per-mib.svg, exit-cost.json and runs/ (each \
            run's ledger JSON and the recorded trace); prints the tables. --quick uses small sizes and repeats \
            only the NE2000's, iPXE's and the RTL8139 ssh's small workloads (for CI).

            Exit status: 0 when every run verified its transfer and every ratio spread is within --tolerance, \
            1 otherwise, 2 when a run could not be set up, 130 when interrupted.
            """)

    @OptionGroup var cache: CacheOptions

    @Flag(help: "CI sizes: large download 256 KiB, run once; ssh and small download still repeated; no boot-only row.")
    var quick = false

    @Option(name: .customLong("repeat"), help: ArgumentHelp("Fresh-guest runs per workload (the spread of the exit ratios needs 2).", valueName: "n"))
    var repeats = 2

    @Option(help: ArgumentHelp("Size of the small download (K/M suffixes).", valueName: "bytes"))
    var smallSize = ByteSize(bytes: 100 << 10)

    @Option(help: ArgumentHelp("Size of the large download (default 4M; 256K with --quick).", valueName: "bytes"))
    var largeSize: ByteSize?

    @Flag(inversion: .prefixedNo, help: "Add a boot-only run (default: on, off with --quick).")
    var baseline: Bool?

    @Option(help: ArgumentHelp("Output directory (default: <cache>/compare-<timestamp>).", valueName: "dir"))
    var out: String?

    @Option(help: ArgumentHelp("Read the exit cost from this `vpio exit-cost --json` file instead of measuring it.", valueName: "path"))
    var exitCostJson: String?

    @Option(help: ArgumentHelp("Read the agent's cost from this `vpio agent-cost --json` file instead of measuring it.", valueName: "path"))
    var agentCostJson: String?

    @Option(help: ArgumentHelp("Largest allowed spread (max − min) of a mode's exit ratio between runs, in percent of its mean.",
                               valueName: "percent"))
    var tolerance = 25.0

    @Flag(help: "Run the guests without the agent (vpio-agent).")
    var noAgent = false

    @Flag(name: .customLong("no-ipxe"), help: "Leave out the second driver's rows (iPXE's small and large download).")
    var noIPXE = false

    @Flag(name: .customLong("no-shared"), help: "Leave out the shared download (two guests on one device).")
    var noShared = false

    @Flag(name: .customLong("no-rtl8139"), help: "Leave out the RTL8139's rows (ssh, small and large download on the bus-master NIC).")
    var noRTL8139 = false

    @Option(help: "The mode vpio-host enforces (all five are counted).")
    var mode: Mode = .cooperative

    @Option(help: "QEMU accelerator (tcg on this machine kind; kvm on real hosts).")
    var accel: Accelerator = .tcg

    @Option(help: ArgumentHelp("The vpio-host executable (default: beside this vpio).", valueName: "path"))
    var hostBinary: String?

    @Option(help: ArgumentHelp("Limit per guest run in seconds.", valueName: "seconds"))
    var timeout = 300

    @Flag(help: "Echo the guest consoles (prefixed \"guest| \").")
    var console = false

    @Flag(help: "Fail instead of provisioning when the cache is incomplete (missing served files are always written).")
    var noProvision = false

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeat must be at least 1") }
        guard tolerance >= 0 else { throw ValidationError("--tolerance must not be negative") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    /// One scenario to run.
    struct Plan {
        var name: String
        var slug: String
        var workload: String
        var size: Int
        var runs: Int
        var seed: SeedFigure?
        var byteUnit: String
        var guest: RunConfiguration.GuestKind = .linux
        /// Guests sharing the device (guest 1's ledger is the row).
        var guests = 1
        /// vpio-host's device: the NE2000, or the RTL8139 (8139too with port I/O).
        var device = "ne2000"
    }

    var plans: [Plan] {
        let large = largeSize?.bytes ?? (quick ? 256 << 10 : 4 << 20)
        var plans = [
            Plan(name: "ssh", slug: "ssh", workload: "ssh-session", size: smallSize.bytes, runs: repeats, seed: .linuxSSH,
                 byteUnit: "eth0 rx+tx bytes"),
            Plan(name: "small download", slug: "small-download", workload: "download", size: smallSize.bytes, runs: repeats,
                 seed: .linuxSmallDownload, byteUnit: "file bytes"),
            Plan(name: "large download", slug: "large-download", workload: "download", size: large, runs: quick ? 1 : repeats,
                 seed: .linuxLargeDownload, byteUnit: "file bytes"),
        ]
        if !noIPXE {
            plans += [
                Plan(name: "iPXE small download", slug: "ipxe-small-download", workload: "download", size: smallSize.bytes,
                     runs: repeats, seed: .windowsSmallDownload, byteUnit: "file bytes", guest: .ipxe),
                Plan(name: "iPXE large download", slug: "ipxe-large-download", workload: "download", size: large,
                     runs: quick ? 1 : repeats, seed: .windowsLargeDownload, byteUnit: "file bytes", guest: .ipxe),
            ]
        }
        if !noRTL8139 {
            plans += [
                Plan(name: "RTL8139 ssh", slug: "rtl8139-ssh", workload: "ssh-session", size: smallSize.bytes, runs: repeats,
                     seed: nil, byteUnit: "eth0 rx+tx bytes", device: "rtl8139"),
                // Its exit ratio follows the guest's ACK pattern (an exit per transmitted frame): two quick runs of
                // the same 100 KiB once sent 58 and 33 frames, 5.6 % against 3.7 %. The full compare repeats it.
                Plan(name: "RTL8139 small download", slug: "rtl8139-small-download", workload: "download", size: smallSize.bytes,
                     runs: quick ? 1 : repeats, seed: nil, byteUnit: "file bytes", device: "rtl8139"),
                Plan(name: "RTL8139 large download", slug: "rtl8139-large-download", workload: "download", size: large,
                     runs: quick ? 1 : repeats, seed: nil, byteUnit: "file bytes", device: "rtl8139"),
            ]
        }
        if !noShared {
            plans.append(Plan(name: "shared download", slug: "shared-download", workload: "download", size: smallSize.bytes, runs: 1,
                              seed: nil, byteUnit: "file bytes", guests: 2))
        }
        if baseline ?? !quick {
            plans.append(Plan(name: "boot only", slug: "boot", workload: "none", size: smallSize.bytes, runs: 1, seed: nil,
                              byteUnit: "none"))
        }
        return plans
    }

    func run() throws {
        cache.bootstrapLogging()
        guard geteuid() == 0 else { throw fail(StepError(step: "compare", reason: "must run as root (network namespaces, TAP)")) }
        let started = Date()
        let layout = try cache.layout()
        let plans = self.plans
        let outDirectory = URL(fileURLWithPath: out ?? layout.root.appendingPathComponent("compare-\(Self.stamp(started))").path)
        let runsDirectory = outDirectory.appendingPathComponent("runs")
        try FileManager.default.createDirectory(at: runsDirectory, withIntermediateDirectories: true)
        say("[compare] output directory \(outDirectory.path)")
        try prepareCache(layout, sizes: plans.map(\.size))

        let exitCost = try measureExitCost(into: outDirectory.appendingPathComponent("exit-cost.json"))
        let agentCost = try measureAgentCost(into: outDirectory.appendingPathComponent("agent-cost.json"))
        let traceFile = runsDirectory.appendingPathComponent("large-download-1.vptrace")

        // Repeat-major order, so that slow drifts of the machine's load spread over every scenario.
        var schedule: [(plan: Int, index: Int)] = []
        for index in 1...(plans.map(\.runs).max() ?? 1) {
            for (p, plan) in plans.enumerated() where index <= plan.runs { schedule.append((p, index)) }
        }
        var runs = Array(repeating: [CompareRun](), count: plans.count)
        var failures: [String] = []
        for (step, item) in schedule.enumerated() {
            let plan = plans[item.plan]
            let label = "\(plan.name) #\(item.index)"
            say("[compare] run \(step + 1)/\(schedule.count): \(label) (\(plan.workload)\(plan.workload == "download" ? " \(plan.size) bytes" : ""))")
            let ledgerArgument = "runs/\(plan.slug)-\(item.index).ledger.json"
            // A shared device's vpio-host writes a ledger per guest: guest 1's is the row.
            let ledgerFile = plan.guests > 1 ? PerGuestFile.path(ledgerArgument, guest: "g1") : ledgerArgument
            let record = plan.slug == "large-download" && item.index == 1 ? traceFile : nil
            let (result, run) = try runGuest(plan, index: item.index, label: label, layout: layout,
                                             ledger: outDirectory.appendingPathComponent(ledgerArgument), ledgerFile: ledgerFile, record: record)
            runs[item.plan].append(run)
            let l = run.ledger
            say("[compare] \(label): \(result.succeeded ? "ok" : "FAILED") (\(run.check)), \(l.accesses) accesses; "
                + [Mode.vmmModel, .cooperative, .onDemand].compactMap { m in l[m].map { "\(m.rawValue) \($0.exits) (\(String(format: "%.2f", $0.exitRatio * 100)) %)" } }
                .joined(separator: ", ") + String(format: "; wall %.0f s", result.wallSeconds))
            if !result.succeeded { failures.append("\(label): \(result.failures.joined(separator: "; "))") }
        }

        var costs = modelCosts(trace: traceFile, exitCost: exitCost)
        costs.agent = agentCost.figures
        costs.agentSource = agentCost.source
        let scenarios = plans.enumerated().map { p, plan in
            Scenario(name: plan.name, workload: plan.workload, fileSize: plan.workload == "download" ? plan.size : nil,
                     byteUnit: plan.byteUnit, seed: plan.seed, device: plan.device, runs: runs[p],
                     costs: plan.device == "ne2000" ? costs : costs.withoutModels, tolerancePercent: tolerance)
        }
        let report = CompareReport(
            command: (["vpio"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
            startedAt: ISO8601DateFormatter().string(from: started), host: Self.hostDescription(), accelerator: accel.rawValue,
            agent: noAgent ? "none" : "register", enforced: mode, tolerancePercent: tolerance, costs: costs, scenarios: scenarios,
            notes: notes(plans))
        try report.json().write(to: outDirectory.appendingPathComponent("compare.json"))
        try Data(report.csv.utf8).write(to: outDirectory.appendingPathComponent("compare.csv"))
        try Data(report.exitsPerMiBSVG.utf8).write(to: outDirectory.appendingPathComponent("exits-per-mib.svg"))

        say("")
        report.table.forEach { say($0) }
        say("")
        say("[compare] \(schedule.count) runs in \(String(format: "%.0f", Date().timeIntervalSince(started))) s; "
            + "wrote compare.json, compare.csv, exits-per-mib.svg, exit-cost.json, \(noAgent ? "" : "agent-cost.json, ")and runs/ to \(outDirectory.path)")
        failures.forEach { say("[compare] FAILED \($0)") }
        if !report.allWithinTolerance { say("[compare] an exit ratio spread exceeds \(tolerance) % of its mean") }
        if !failures.isEmpty || !report.allVerified || !report.allWithinTolerance { throw ExitCode(1) }
    }

    // MARK: - Steps

    /// Provisions a missing cache (unless --no-provision), and writes missing served files in any case.
    func prepareCache(_ layout: CacheLayout, sizes: [Int]) throws {
        let provisioner = Provisioner(layout: layout)
        let missing = Provisioner.readiness(of: layout, servedSize: ServedFiles.defaultSize).missing
        do {
            if !missing.isEmpty && !noProvision {
                try provisioner.provision(servedSizes: Array(Set(sizes + [ServedFiles.defaultSize])))
            } else {
                try provisioner.ensureServedFiles(sizes: sizes)
            }
        } catch {
            throw fail(error)
        }
    }

    /// One fresh guest: the plan's workload, the ledger written to `ledger`.
    func runGuest(_ plan: Plan, index: Int, label: String, layout: CacheLayout, ledger: URL, ledgerFile: String,
                  record: URL?) throws -> (RunResult, CompareRun) {
        let rtl8139 = plan.device == "rtl8139"
        // The RTL8139 has no on-demand form: its DMA reaches guest memory, which a guest never owns wholly.
        var arguments = ["--mode", rtl8139 && mode == .onDemand ? Mode.cooperative.rawValue : mode.rawValue, "--ledger-json", ledger.path]
        if let record { arguments += ["--record", record.path] }
        if rtl8139 { arguments += ["--device", "rtl8139"] }
        var configuration = RunConfiguration(layout: layout, nic: .vpioHost(binary: hostExecutable(), extraArguments: arguments))
        configuration.workloads = [plan.workload]
        configuration.size = plan.size
        configuration.accelerator = accel
        configuration.timeout = TimeInterval(timeout)
        configuration.provisionIfNeeded = false
        configuration.echoConsole = console
        configuration.guest = plan.guest
        configuration.guests = plan.guests
        if rtl8139 { configuration.nicDriver = .rtl8139 }
        if !noAgent, plan.guest == .linux { configuration.agent = .register }
        let ledgerPath = plan.guests > 1 ? PerGuestFile.path(ledger.path, guest: "g1") : ledger.path
        try? FileManager.default.removeItem(atPath: ledgerPath)

        let ticker = Ticker(label: label, every: 15)
        defer { ticker.stop() }
        let result: RunResult
        do {
            result = try ExperimentRunner(configuration: configuration).run()
        } catch let error as StepError where error.isInterruption {
            FileHandle.standardError.write(Data("vpio: \(error)\n".utf8))
            throw ExitCode(130)
        } catch {
            throw fail(error)
        }
        guard let data = FileManager.default.contents(atPath: ledgerPath),
              let exits = try? JSONDecoder().decode(ExitLedger.self, from: data) else {
            result.summary.forEach { say("[run] \($0)") }
            throw fail(StepError(step: label, reason: "vpio-host wrote no exit ledger to \(ledgerPath)"))
        }
        let bytes: Int, verified: Bool, check: String, seconds: Double
        switch plan.workload {
        case "download":
            let download = result.download
            bytes = download?.bytes ?? 0
            verified = download?.checksumOK == true && bytes == plan.size
                && result.otherGuests.allSatisfy { $0.download?.checksumOK == true }
            check = download.map { "\(plan.guest == .ipxe ? "host" : "sha256") \($0.status)" } ?? "no result"
            seconds = download?.seconds ?? 0
        case "ssh-session":
            let session = result.sshSession
            bytes = session?.bytes ?? 0
            verified = session?.ok == true
            check = session.map { "\($0.markers)/\($0.commands) markers" } ?? "no result"
            seconds = session?.seconds ?? 0
        default:
            bytes = 0
            verified = result.succeeded
            check = result.succeeded ? "booted" : "failed"
            seconds = 0
        }
        if !result.succeeded { result.summary.forEach { say("[run] \($0)") } }
        return (result, CompareRun(index: index, ledgerFile: ledgerFile, ledger: exits, bytes: bytes, verified: verified && result.succeeded,
                                   check: check, workloadSeconds: seconds, wallSeconds: result.wallSeconds, frames: Self.frames(result),
                                   agentWork: Self.agentWork(result)))
    }

    /// The agent's probe hits, intents and accesses, from its summary (guest 1's, as the ledger row is).
    static func agentWork(_ result: RunResult) -> AgentWork? {
        guard let summary = result.agentSummary, let hits = summary.number("events"), let intents = summary.number("intents"),
              let accesses = summary.number("accesses") else { return nil }
        return AgentWork(hits: Int(hits), intents: Int(intents), accesses: Int(accesses))
    }

    /// Frames the NIC received and transmitted, from vpio-host's statistics.
    static func frames(_ result: RunResult) -> Int? {
        struct Stats: Decodable {
            struct NIC: Decodable { var framesReceived: Int; var framesTransmitted: Int }
            var nic: NIC
        }
        guard let json = result.hostStatisticsJSON, let stats = try? JSONDecoder().decode(Stats.self, from: Data(json.utf8)) else { return nil }
        return stats.nic.framesReceived + stats.nic.framesTransmitted
    }

    /// The exit cost: read from --exit-cost-json, else measured now on /dev/kvm; the report is kept in `copy`.
    /// nil (with the reason) when KVM cannot be used.
    func measureExitCost(into copy: URL) throws -> (report: ExitCostReport?, source: String) {
        if let exitCostJson {
            let data: Data
            let report: ExitCostReport
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: exitCostJson))
                report = try JSONDecoder().decode(ExitCostReport.self, from: data)
            } catch {
                throw ValidationError("--exit-cost-json \(exitCostJson): \(error)")
            }
            try data.write(to: copy)
            return (report, "`vpio exit-cost --json` file \(exitCostJson), measured \(report.measuredAt): \(report.source)"
                + String(format: "; load average %.2f", report.host.loadAverage))
        }
        say("[compare] measuring the port-I/O exit cost on /dev/kvm (vpio exit-cost)")
        do {
            let report = try ExitCost.measure(ExitCost.Options())
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(report).write(to: copy)
            return (report, "measured by this compare (= `vpio exit-cost`, \(report.exits.timed) exits in \(report.exits.batches) batches), "
                + "saved as exit-cost.json: \(report.source)" + String(format: "; load average %.2f", report.host.loadAverage))
        } catch let error as KVMError {
            return (nil, "/dev/kvm unusable: \(error)")
        }
    }

    /// The agent's cost per hit: read from --agent-cost-json, else measured now (as `vpio agent-cost`); the
    /// report is kept in `copy`. nil (with the reason) without an agent, or where it cannot be measured.
    func measureAgentCost(into copy: URL) throws -> (figures: AgentCostFigures?, source: String) {
        if noAgent { return (nil, "no agent ran (--no-agent)") }
        let report: AgentCostReport, data: Data, origin: String
        if let agentCostJson {
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: agentCostJson))
                report = try JSONDecoder().decode(AgentCostReport.self, from: data)
            } catch {
                throw ValidationError("--agent-cost-json \(agentCostJson): \(error)")
            }
            origin = "`vpio agent-cost --json` file \(agentCostJson)"
        } else {
            say("[compare] measuring the agent's cost per probe hit on this CPU (vpio agent-cost)")
            do {
                report = try AgentCostCommand.measure(bpfObject: nil, cache: cache, progress: { _ in })
            } catch {
                return (nil, "not measured: \(error)")
            }
            data = try AgentCostCommand.encoded(report)
            origin = "measured by this compare (= `vpio agent-cost`), saved as agent-cost.json"
        }
        try data.write(to: copy)
        guard report.exact else { return (nil, "\(origin): its counts were not exact (\(report.cases.flatMap(\.problems).prefix(2))); not used") }
        let figures = AgentCostFigures(nanosecondsPerHit: report.nanosecondsPerHit, nanosecondsPerIntent: report.intentNanoseconds,
                                       nanosecondsPerStringAccess: report.userNanosecondsPerStringAccess)
        return (figures, "\(origin): \(report.source)")
    }

    /// The measured figures: the exit cost, and the model benchmark over the recorded trace.
    func modelCosts(trace: URL, exitCost: (report: ExitCostReport?, source: String)) -> CostFigures {
        var model: [String: Double] = [:]
        var source: String
        if let events = try? loadTrace(trace.path), !events.isEmpty {
            let repetitions = max(3, 20_000_000 / events.count)
            say("[compare] model benchmark over runs/\(trace.lastPathComponent) (\(events.count) events, \(repetitions) passes)")
            let timings = ModelBench.measure(events, repetitions: repetitions)
            for timing in timings { model[timing.mode.rawValue] = timing.nsPerEvent }
            source = "model benchmark (= `vpio model-bench --trace runs/\(trace.lastPathComponent)`) over the trace this compare recorded, "
                + "\(events.count) events × \(repetitions) passes, on the host CPU (not under TCG): "
                + timings.map { "\($0.label) \(String(format: "%.2f", $0.nsPerEvent)) ns" + ($0.ticksPerEvent.map { String(format: " (%.0f TSC ticks)", $0) } ?? "") }
                .joined(separator: "; ")
        } else {
            source = "no trace recorded at \(trace.path): not measured"
        }
        let spread = exitCost.report?.nsPerExit
        return CostFigures(exitNanoseconds: spread?.median, exitNanosecondsMin: spread?.min, exitNanosecondsMax: spread?.max,
                           exitSource: exitCost.source, modelNanoseconds: model, modelSource: source)
    }

    func notes(_ plans: [Plan]) -> [String] {
        var notes = [
            "counts cover the whole guest run (boot, driver load, \(noAgent ? "" : "agent attach, ")the workload, power-off)"
                + (plans.contains { $0.workload == "none" } ? "; the boot only row is that part without a workload" : ""),
            "ssh bytes are the guest's eth0 rx+tx bytes during the session (frames with headers); download bytes are the file's payload",
            "guest times are under \(accel.rawValue)\(accel == .tcg ? " (emulated CPU): not hardware times" : ""); "
                + "the cost estimates use the measured exit and model figures, not guest times",
            "the exit cost is one user-space port-I/O exit round trip on this machine's /dev/kvm (a nested KVM here): "
                + "a bare-metal host's exit is cheaper",
        ]
        if !noIPXE {
            notes.append("the iPXE rows run no agent (it is a Linux program): their cooperative mode falls back to vmm-model at the "
                         + "first DMA start, and the ledger still counts what each mode's bitmap would trap; seed % beside them is Windows XP's")
        }
        if !noRTL8139 {
            notes.append("the RTL8139 rows: 8139too with port I/O (use_io=1) on vpio-host's RTL8139, a bus master, with the agent "
                         + "(probes at 8139too's ioread/iowrite calls) and no on-demand mode; cooperative traps TSD, RBSTART, RCR and CR "
                         + "writes and checks each transmit and ring against the guest's memory, vmm-model adds TSAD; their overhead prices "
                         + "exits and the agent's hits, not model updates (no RTL8139 model benchmark yet; the NE2000's models cost a few ns "
                         + "per update against thousands per exit); the agent's per-hit figure is `vpio agent-cost`'s, measured at the NE2000's stand-ins")
        }
        if !noShared {
            notes.append("shared download: two guests at once on one device, guest 1's ledger; its held accesses are exits in every "
                         + "mode (a non-owner's bitmap traps every port), on-demand's are the CR writes while a switch is wanted plus one kick per arming")
        }
        if !noAgent {
            notes.append("the cooperative estimate adds the agent's in-guest work: each run's probe hits, intents and string-op accesses "
                         + "(its summary) priced by `vpio agent-cost` (figures above); on-demand needs no agent and vmm-model runs none")
        }
        return notes
    }

    // MARK: - Helpers

    /// `--host-binary`, else `vpio-host` in the folder of this executable.
    func hostExecutable() -> URL {
        hostBinary.map { URL(fileURLWithPath: $0) } ?? siblingExecutable("vpio-host")
    }

    /// `20250101-120000` in local time.
    static func stamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: date)
    }

    /// `uname -srm` and the CPU model.
    static func hostDescription() -> String {
        var names = utsname()
        uname(&names)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "?"
        return "\(field(names.sysname)) \(field(names.release)) \(field(names.machine)), \(cpu), "
            + "\(ProcessInfo.processInfo.activeProcessorCount) cores"
    }
}

/// Prints "[compare] LABEL: running, N s" every `every` seconds until stopped, so that a long guest run
/// shows it is alive.
final class Ticker: @unchecked Sendable {
    private let timer: DispatchSourceTimer

    init(label: String, every seconds: Int) {
        let start = Date()
        timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + .seconds(seconds), repeating: .seconds(seconds))
        timer.setEventHandler {
            say("[compare] \(label): running, \(String(format: "%.0f", Date().timeIntervalSince(start))) s")
        }
        timer.resume()
    }

    func stop() { timer.cancel() }
}
