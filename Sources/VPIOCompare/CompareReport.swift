import VPIOMonitor

/// What `vpio compare` found: every scenario's runs with their exact exit ledgers, the pooled figures per
/// mode, the repeatability of the exit ratios and, where measured costs were available, the estimated
/// overhead per MiB. Written as `compare.json`; the table, CSV and chart are rendered from it.
public struct CompareReport: Codable, Equatable, Sendable {
    /// The command line that produced the report.
    public var command: String
    /// ISO 8601, when the comparison started.
    public var startedAt: String
    /// `uname -srm` of the host and the QEMU accelerator (`tcg` here: guest times are not hardware times).
    public var host: String
    public var accelerator: String
    /// Whether the guest agent ran (`register`) or not (`none`), and the mode vpio-host enforced.
    public var agent: String
    public var enforced: Mode
    /// Largest allowed spread (max − min) of a mode's exit ratio between runs of one scenario, in percent
    /// of that mode's mean ratio over the runs.
    public var tolerancePercent: Double
    public var costs: CostFigures
    public var scenarios: [Scenario]
    /// Caveats printed under the tables.
    public var notes: [String]

    public init(command: String, startedAt: String, host: String, accelerator: String, agent: String, enforced: Mode,
                tolerancePercent: Double, costs: CostFigures, scenarios: [Scenario], notes: [String]) {
        self.command = command
        self.startedAt = startedAt
        self.host = host
        self.accelerator = accelerator
        self.agent = agent
        self.enforced = enforced
        self.tolerancePercent = tolerancePercent
        self.costs = costs
        self.scenarios = scenarios
        self.notes = notes
    }

    /// Every run verified its transfer (checksum or command markers).
    public var allVerified: Bool { scenarios.allSatisfy { $0.runs.allSatisfy(\.verified) } }

    /// Every scenario's exit ratios are within the tolerance.
    public var allWithinTolerance: Bool { scenarios.allSatisfy { $0.summary.withinTolerance } }
}

/// A figure from the seed's slides ("NE2K Model Performance"): the I/Os its VMM hooked to drive its model
/// (by the CR-write share, essentially the command register; issue 12). The Linux rows stand beside our
/// Linux guest's, the Windows XP rows beside our second driver's (iPXE): no Windows image can be had here.
public struct SeedFigure: Codable, Equatable, Sendable {
    public var label: String
    public var totalIO: Int
    public var hooked: Int
    public var ratioPercent: Double

    public static let linuxSSH = SeedFigure(label: "Linux: ssh", totalIO: 1_865_055, hooked: 257_324, ratioPercent: 13.80)
    public static let linuxSmallDownload = SeedFigure(label: "Linux: small dl", totalIO: 2_602_002, hooked: 69_700, ratioPercent: 2.68)
    public static let linuxLargeDownload = SeedFigure(label: "Linux: large dl", totalIO: 294_508_810, hooked: 9_429_917, ratioPercent: 3.20)
    public static let windowsSmallDownload = SeedFigure(label: "Windows: small dl", totalIO: 1_081_738, hooked: 39_089, ratioPercent: 3.61)
    public static let windowsLargeDownload = SeedFigure(label: "Windows: large dl", totalIO: 132_898_230, hooked: 988_535, ratioPercent: 0.74)
}

/// One workload, run in `runs.count` fresh guests.
public struct Scenario: Codable, Equatable, Sendable {
    /// "ssh", "small download", "large download", "boot only".
    public var name: String
    /// The guest workload (`ssh-session`, `download`, `none`).
    public var workload: String
    /// The downloaded file's size, for downloads.
    public var fileSize: Int?
    /// What `CompareRun.bytes` counts.
    public var byteUnit: String
    public var seed: SeedFigure?
    /// The NIC the runs used: "ne2000", or "rtl8139" (no on-demand mode, no CR-port column).
    public var device: String
    public var runs: [CompareRun]
    /// Pooled over the runs; derived from them and the costs when the scenario is made.
    public var summary: ScenarioSummary

    public init(name: String, workload: String, fileSize: Int?, byteUnit: String, seed: SeedFigure?, device: String = "ne2000",
                runs: [CompareRun], costs: CostFigures, tolerancePercent: Double) {
        self.name = name
        self.device = device
        self.workload = workload
        self.fileSize = fileSize
        self.byteUnit = byteUnit
        self.seed = seed
        self.runs = runs
        summary = ScenarioSummary(runs: runs, costs: costs, tolerancePercent: tolerancePercent)
    }
}

/// One fresh guest running one workload.
public struct CompareRun: Codable, Equatable, Sendable {
    /// 1-based repeat number.
    public var index: Int
    /// vpio-host's `--ledger-json` file, relative to the output directory.
    public var ledgerFile: String
    /// That file's content.
    public var ledger: ExitLedger
    /// Bytes the workload moved (see `Scenario.byteUnit`).
    public var bytes: Int
    /// The transfer was checked: SHA-256 matched, or every command marker came back.
    public var verified: Bool
    /// How it was checked, for people ("sha256 ok", "40/40 markers").
    public var check: String
    /// The workload's time inside the guest (TCG: not a hardware time).
    public var workloadSeconds: Double
    /// Boot to teardown, on the host clock.
    public var wallSeconds: Double
    /// Frames the NIC received and transmitted in the run (vpio-host's counters); nil in reports made
    /// before they were kept.
    public var frames: Int?
    /// What the guest agent did in the run (its summary); nil without an agent.
    public var agentWork: AgentWork?

    public init(index: Int, ledgerFile: String, ledger: ExitLedger, bytes: Int, verified: Bool, check: String,
                workloadSeconds: Double, wallSeconds: Double, frames: Int? = nil, agentWork: AgentWork? = nil) {
        self.frames = frames
        self.agentWork = agentWork
        self.index = index
        self.ledgerFile = ledgerFile
        self.ledger = ledger
        self.bytes = bytes
        self.verified = verified
        self.check = check
        self.workloadSeconds = workloadSeconds
        self.wallSeconds = wallSeconds
    }
}

/// The guest agent's work in one run, from its summary: what its in-guest cost is made of.
public struct AgentWork: Codable, Equatable, Sendable {
    /// Probe hits (one BPF program run and one event each).
    public var hits: Int
    /// DMA intents the program wrote into the host ring.
    public var intents: Int
    /// Device accesses the hits stood for (a rep string op's hit stands for cx of them).
    public var accesses: Int

    public init(hits: Int, intents: Int, accesses: Int) {
        self.hits = hits
        self.intents = intents
        self.accesses = accesses
    }

    static func + (a: AgentWork, b: AgentWork) -> AgentWork {
        AgentWork(hits: a.hits + b.hits, intents: a.intents + b.intents, accesses: a.accesses + b.accesses)
    }
}

extension CompareRun {
    /// CR writes (every page) / device accesses, from the emulated mode's per-port exits (it traps
    /// everything); nil without accesses.
    public var crWriteShare: Double? {
        guard ledger.accesses > 0, let crWrites = ledger[.emulated]?.exitsByPort[ModeLedger.portKey(offset: 0, direction: .write)]
        else { return nil }
        return Double(crWrites) / Double(ledger.accesses)
    }
}

/// A scenario's runs pooled: sums of exact counts, ratios of the sums, the per-run ratios and their spread.
public struct ScenarioSummary: Codable, Equatable, Sendable {
    public var runs: Int
    public var accesses: Int
    public var bytes: Int
    public var modes: [ModeSummary]
    /// Every mode's ratio spread is at most the tolerance (true with a single run: nothing to compare).
    public var withinTolerance: Bool

    public init(runs: [CompareRun], costs: CostFigures, tolerancePercent: Double) {
        self.runs = runs.count
        accesses = runs.reduce(0) { $0 + $1.ledger.accesses }
        bytes = runs.reduce(0) { $0 + $1.bytes }
        let mib = Double(bytes) / 1_048_576
        let accesses = self.accesses
        let agentRuns = runs.compactMap(\.agentWork)
        // Pooled only when every run had an agent: a run without one did no agent work to add.
        let agent = agentRuns.count == runs.count ? agentRuns.reduce(AgentWork(hits: 0, intents: 0, accesses: 0), +) : nil
        // The modes the ledgers have (the RTL8139's have no on-demand).
        modes = Mode.allCases.filter { mode in runs.contains { $0.ledger[mode] != nil } }.map { mode in
            let rows = runs.compactMap { $0.ledger[mode] }
            let exits = rows.reduce(0) { $0 + $1.exits }
            let updates = rows.reduce(0) { $0 + $1.modelUpdates }
            let ratios = runs.map { run in run.ledger.accesses > 0 ? Double(run.ledger[mode]?.exits ?? 0) / Double(run.ledger.accesses) : 0 }
            let spread = (ratios.max() ?? 0) - (ratios.min() ?? 0)
            let mean = ratios.isEmpty ? 0 : ratios.reduce(0, +) / Double(ratios.count)
            let overhead = costs.overheadNanoseconds(mode: mode, exits: exits, modelUpdates: updates, agent: agent)
            let agentPart = mode == .cooperative ? agent.flatMap { costs.agent?.nanoseconds(for: $0) } : nil
            return ModeSummary(
                mode: mode, exits: exits, modelUpdates: updates,
                exitRatio: accesses > 0 ? Double(exits) / Double(accesses) : 0,
                exitsPerMiB: mib > 0 ? Double(exits) / mib : nil,
                ratioPerRun: ratios, ratioSpreadPoints: spread * 100, ratioSpreadPercent: mean > 0 ? spread / mean * 100 : 0,
                overheadMillisecondsPerMiB: mib > 0 ? overhead.map { $0 / 1e6 / mib } : nil,
                agentMillisecondsPerMiB: mib > 0 ? agentPart.map { $0 / 1e6 / mib } : nil)
        }
        withinTolerance = modes.allSatisfy { $0.ratioSpreadPercent <= tolerancePercent }
    }

    public subscript(mode: Mode) -> ModeSummary? { modes.first { $0.mode == mode } }
}

/// One mode over a scenario's runs.
public struct ModeSummary: Codable, Equatable, Sendable {
    public var mode: Mode
    public var exits: Int
    public var modelUpdates: Int
    /// Pooled: exits / accesses over all runs.
    public var exitRatio: Double
    /// nil when the scenario moved no bytes (boot only).
    public var exitsPerMiB: Double?
    public var ratioPerRun: [Double]
    /// max − min of `ratioPerRun`, in percentage points.
    public var ratioSpreadPoints: Double
    /// max − min of `ratioPerRun`, in percent of their mean (0 when the mean is 0).
    public var ratioSpreadPercent: Double
    /// Estimated cost of this mode's exits and model updates (and, for cooperative, the agent's in-guest
    /// work) per MiB moved; nil without measured costs.
    public var overheadMillisecondsPerMiB: Double?
    /// The agent's part of `overheadMillisecondsPerMiB` (cooperative with an agent and its measured cost).
    public var agentMillisecondsPerMiB: Double?
}

/// The measured figures the overhead estimate multiplies the counts by, each with where it came from.
public struct CostFigures: Codable, Equatable, Sendable {
    /// Median ns per port-I/O exit round trip (`vpio exit-cost`); nil when it could not be measured.
    public var exitNanoseconds: Double?
    public var exitNanosecondsMin: Double?
    public var exitNanosecondsMax: Double?
    public var exitSource: String
    /// ns per model update by mode (`vpio model-bench` over a real trace): emulated and vmm-model run the
    /// full model, cooperative (and on-demand, while armed) the reduced model at DMA starts, passthrough none.
    public var modelNanoseconds: [String: Double]
    public var modelSource: String
    /// The agent's in-guest cost per unit of its work (`vpio agent-cost`); nil when not measured.
    public var agent: AgentCostFigures?
    /// Where the agent figures came from, or why there are none.
    public var agentSource: String?

    public init(exitNanoseconds: Double?, exitNanosecondsMin: Double?, exitNanosecondsMax: Double?, exitSource: String,
                modelNanoseconds: [String: Double], modelSource: String, agent: AgentCostFigures? = nil, agentSource: String? = nil) {
        self.agent = agent
        self.agentSource = agentSource
        self.exitNanoseconds = exitNanoseconds
        self.exitNanosecondsMin = exitNanosecondsMin
        self.exitNanosecondsMax = exitNanosecondsMax
        self.exitSource = exitSource
        self.modelNanoseconds = modelNanoseconds
        self.modelSource = modelSource
    }

    /// The exit cost and the agent's work, model updates priced at 0: for a device whose model was not
    /// benchmarked (the NE2000's models cost a few ns per update against thousands per exit, so this is a
    /// lower bound within a fraction of a percent). The agent's hits are priced per hit as measured.
    public var withoutModels: CostFigures {
        var copy = self
        copy.modelNanoseconds = Dictionary(uniqueKeysWithValues: Mode.allCases.map { ($0.rawValue, 0) })
        return copy
    }

    /// `exits × exit cost + model updates × model cost` in ns, and for cooperative the agent's work
    /// when the run had an agent and its cost was measured; nil when a needed figure is missing.
    public func overheadNanoseconds(mode: Mode, exits: Int, modelUpdates: Int, agent work: AgentWork? = nil) -> Double? {
        guard let base = exitAndModelNanoseconds(mode: mode, exits: exits, modelUpdates: modelUpdates) else { return nil }
        guard mode == .cooperative, let work, let agent else { return base }
        return base + agent.nanoseconds(for: work)
    }

    private func exitAndModelNanoseconds(mode: Mode, exits: Int, modelUpdates: Int) -> Double? {
        guard let exitNanoseconds else { return nil }
        let model: Double
        if modelUpdates == 0 {
            model = 0
        } else if let perUpdate = modelNanoseconds[(mode == .onDemand ? .cooperative : mode).rawValue] {  // the same reduced model
            model = Double(modelUpdates) * perUpdate
        } else {
            return nil
        }
        return Double(exits) * exitNanoseconds + model
    }
}

/// The agent's in-guest cost per unit of work, from `vpio agent-cost`: the one place its work is priced.
public struct AgentCostFigures: Codable, Equatable, Sendable {
    /// Every hit: kprobe dispatch + the BPF program + the user-space agent's handling of its event.
    public var nanosecondsPerHit: Double
    /// What writing a DMA intent adds to its hit's program run.
    public var nanosecondsPerIntent: Double
    /// What each access beyond the first of a rep string op's event adds in user space (its full model).
    public var nanosecondsPerStringAccess: Double

    public init(nanosecondsPerHit: Double, nanosecondsPerIntent: Double, nanosecondsPerStringAccess: Double) {
        self.nanosecondsPerHit = nanosecondsPerHit
        self.nanosecondsPerIntent = nanosecondsPerIntent
        self.nanosecondsPerStringAccess = nanosecondsPerStringAccess
    }

    public func nanoseconds(for work: AgentWork) -> Double {
        Double(work.hits) * nanosecondsPerHit + Double(work.intents) * nanosecondsPerIntent
            + Double(max(0, work.accesses - work.hits)) * nanosecondsPerStringAccess
    }
}
