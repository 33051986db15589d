import Foundation
import Testing
import VPIOCompare
import VPIOMonitor

/// Synthetic ledgers through the report: pooled counts, spread, cost estimate, and every rendering.
@Suite("vpio compare report")
struct CompareRenderingTests {
    /// A ledger as vpio-host writes it (decoded from JSON, as compare reads it).
    static func ledger(accesses: Int, exits: [Mode: Int], updates: [Mode: Int]) throws -> ExitLedger {
        let modes = Mode.allCases.map { mode -> [String: Any] in
            let count = exits[mode] ?? 0
            return ["mode": mode.rawValue, "exits": count, "actedOn": count, "exitRatio": Double(count) / Double(accesses),
                    "modelUpdates": updates[mode] ?? 0, "dmaIntents": 0, "denials": 0,
                    // Emulated traps everything: its CR writes are the run's (cooperative's exits, here).
                    "exitsByPort": mode == .emulated ? ["0x00w": exits[.cooperative] ?? 0] : [String: Int]()]
        }
        let object: [String: Any] = ["enforced": "cooperative", "accesses": accesses, "interruptEdges": 0, "resets": 1, "modes": modes]
        return try JSONDecoder().decode(ExitLedger.self, from: JSONSerialization.data(withJSONObject: object))
    }

    static let costs = CostFigures(
        exitNanoseconds: 10_000, exitNanosecondsMin: 9_000, exitNanosecondsMax: 12_000, exitSource: "test exit source",
        modelNanoseconds: ["emulated": 10, "vmm-model": 20, "cooperative": 5], modelSource: "test model source")

    static func report(tolerance: Double = 25) throws -> CompareReport {
        let download = [
            CompareRun(index: 1, ledgerFile: "runs/large-download-1.ledger.json",
                       ledger: try ledger(accesses: 300_000, exits: [.emulated: 300_000, .vmmModel: 9_000, .cooperative: 1_500],
                                          updates: [.emulated: 301_000, .vmmModel: 10_000, .cooperative: 1_500]),
                       bytes: 1 << 20, verified: true, check: "sha256 ok", workloadSeconds: 20, wallSeconds: 50),
            CompareRun(index: 2, ledgerFile: "runs/large-download-2.ledger.json",
                       ledger: try ledger(accesses: 300_000, exits: [.emulated: 300_000, .vmmModel: 9_300, .cooperative: 1_500],
                                          updates: [.emulated: 301_000, .vmmModel: 10_300, .cooperative: 1_500]),
                       bytes: 1 << 20, verified: true, check: "sha256 ok", workloadSeconds: 21, wallSeconds: 51),
        ]
        let boot = [CompareRun(index: 1, ledgerFile: "runs/boot-1.ledger.json",
                               ledger: try ledger(accesses: 1_000, exits: [.emulated: 1_000, .vmmModel: 300, .cooperative: 10],
                                                  updates: [.emulated: 1_010, .vmmModel: 310, .cooperative: 10]),
                               bytes: 0, verified: true, check: "booted", workloadSeconds: 0, wallSeconds: 30)]
        return CompareReport(
            command: "vpio compare --test", startedAt: "2025-01-01T00:00:00Z", host: "Linux test", accelerator: "tcg", agent: "register",
            enforced: .cooperative, tolerancePercent: tolerance, costs: costs,
            scenarios: [
                Scenario(name: "large download", workload: "download", fileSize: 1 << 20, byteUnit: "file bytes", seed: .linuxLargeDownload,
                         runs: download, costs: costs, tolerancePercent: tolerance),
                Scenario(name: "boot only", workload: "none", fileSize: nil, byteUnit: "none", seed: nil, runs: boot, costs: costs,
                         tolerancePercent: tolerance),
            ],
            notes: ["a note"])
    }

    @Test func poolsCountsAndEstimatesCost() throws {
        let report = try Self.report()
        let summary = report.scenarios[0].summary
        #expect(summary.accesses == 600_000 && summary.bytes == 2 << 20)
        let vmm = try #require(summary[.vmmModel])
        #expect(vmm.exits == 18_300 && vmm.modelUpdates == 20_300)
        #expect(vmm.exitsPerMiB == 9_150)
        #expect(abs(vmm.ratioSpreadPoints - 0.1) < 1e-9)
        #expect(abs(vmm.ratioSpreadPercent - 0.1 / 3.05 * 100) < 1e-9)  // of the mean ratio, 3.05 %
        // (18,300 × 10,000 ns + 20,300 × 20 ns) / 2 MiB = 91.703 ms per MiB.
        #expect(abs((vmm.overheadMillisecondsPerMiB ?? 0) - 91.703) < 1e-9)
        #expect(summary[.passthrough]?.overheadMillisecondsPerMiB == 0)
        #expect(report.scenarios[1].summary[.emulated]?.exitsPerMiB == nil)
        #expect(report.allVerified && report.allWithinTolerance)
        #expect(try !Self.report(tolerance: 3).allWithinTolerance)
    }

    @Test func noExitCostMeansNoEstimate() {
        let costs = CostFigures(exitNanoseconds: nil, exitNanosecondsMin: nil, exitNanosecondsMax: nil, exitSource: "no KVM",
                                modelNanoseconds: [:], modelSource: "none")
        #expect(costs.overheadNanoseconds(mode: .cooperative, exits: 10, modelUpdates: 10) == nil)
    }

    /// vmm-model's exits beyond the CR writes, by hook point, pooled: here 300 ISR writes per run.
    @Test func seedExplanationSplitsVMMModelsExtraExitsByHookPoint() throws {
        var report = try Self.report()
        for index in report.scenarios[0].runs.indices {
            var ledger = report.scenarios[0].runs[index].ledger
            let vmm = ledger.modes.firstIndex { $0.mode == .vmmModel }!, emulated = ledger.modes.firstIndex { $0.mode == .emulated }!
            ledger.modes[vmm].exitsByPort = ["0x00w": 1_500, "0x07w": 300, "0x08w": 100]
            ledger.modes[emulated].dmaIntents = 150
            report.scenarios[0].runs[index].ledger = ledger
        }
        let explained = SeedExplanation(report.scenarios[0])
        #expect(explained.crWritePercent == 0.5 && explained.dmaStarts == 300)
        let isr = try #require(explained.parts.first { $0.hook == "ISR write" })
        #expect(isr.exits == 600 && abs(isr.percentOfAccesses - 0.1) < 1e-12 && isr.perDMAStart == 2)
        #expect(explained.parts.first { $0.hook == "RSAR0 write" }?.exits == 200)
        #expect(!explained.parts.contains { $0.hook == "CR write" })
        #expect(report.table.joined(separator: "\n").contains("0.10 (2.00)"))
    }

    /// Every access per frame by port and direction, pooled over the runs (each run 100 frames here).
    @Test func accessesPerFrameByPortFromTheEmulatedLedger() throws {
        var report = try Self.report()
        for index in report.scenarios[0].runs.indices {
            var ledger = report.scenarios[0].runs[index].ledger
            let emulated = ledger.modes.firstIndex { $0.mode == .emulated }!
            ledger.modes[emulated].exitsByPort = ["0x00w": 400, "0x10r": 3_000, "0x07r": 2]
            report.scenarios[0].runs[index].ledger = ledger
            report.scenarios[0].runs[index].frames = 100
        }
        let explained = SeedExplanation(report.scenarios[0])
        #expect(explained.frames == 100 * report.scenarios[0].runs.count)
        #expect(explained.accessesPerFrameByPort["0x00w"] == 4 && explained.accessesPerFrameByPort["0x10r"] == 30)
        let lines = report.table
        let header = try #require(lines.firstIndex { $0.hasPrefix("Accesses per frame") })
        let rows = lines[header...].prefix(8).joined(separator: "\n")
        #expect(rows.contains("0x10r") && rows.contains("30.00") && rows.contains("4.00"))
        #expect(!rows.contains("0x07r"), "0.02 per frame is below the table's cut")
        #expect(rows.contains("all") && rows.contains(Self.oneDecimal(34.02)))
        // A scenario whose runs did not record frames has no per-frame column.
        report.scenarios[0].runs[0].frames = nil
        #expect(SeedExplanation(report.scenarios[0]).frames == nil)
    }

    static func oneDecimal(_ value: Double) -> String { String(format: "%.1f", value) }

    @Test func tableHasEveryRunSeedAndSources() throws {
        let lines = try Self.report().table
        let text = lines.joined(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("large download") && $0.contains(" #2 ") && $0.contains("sha256 ok") && $0.contains(" 9300 ") })
        #expect(text.contains("3.20"))  // the seed's ratio beside ours
        #expect(text.contains("3.10"))  // run 2's vmm-model ratio: 9,300 / 300,000
        #expect(text.contains("CR-w %") && text.contains(" 0.50 "))  // run 1's CR-write share: 1,500 / 300,000
        #expect(text.contains("9150"))  // vmm-model exits per MiB, pooled
        #expect(text.contains("Estimated overhead, ms per MiB"))
        #expect(text.contains("91.703"))
        #expect(text.contains("test exit source") && text.contains("test model source"))
        #expect(text.contains("within 25 % of mean"))
        #expect(text.contains("note: a note"))
    }

    @Test func csvRowsMatchLedgers() throws {
        let lines = try Self.report().csv.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("scenario,workload,run,mode,accesses,exits,"))
        // 2 + 1 runs × 5 modes, plus 5 pooled rows per scenario.
        #expect(lines.count == 1 + 3 * 5 + 2 * 5)
        #expect(lines.contains { $0.hasPrefix("large download,download,2,vmm-model,300000,9300,") && $0.hasSuffix(",true,3.20") })
        #expect(lines.contains { $0.hasPrefix("large download,download,all,cooperative,600000,3000,") })
    }

    @Test func jsonRoundTrips() throws {
        let report = try Self.report()
        let decoded = try JSONDecoder().decode(CompareReport.self, from: report.json())
        #expect(decoded == report)
    }

    @Test func svgIsAChartOfTheScenariosWithBytes() throws {
        let svg = try Self.report().exitsPerMiBSVG
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.hasSuffix("</svg>\n"))
        // Per panel 3 bars (on-demand and passthrough are 0), then 5 legend boxes.
        #expect(svg.components(separatedBy: "<rect x=").count - 1 == 3 + 3 + 5)
        #expect(svg.contains("large download vmm-model: 9150 exits/MiB"))
        #expect(svg.contains("large download vmm-model: 91.7 ms/MiB"))
        #expect(svg.contains("Estimated overhead per MiB moved"))
        #expect(!svg.contains("boot only"))
        #expect(svg.contains(">0</text>"))  // passthrough
        #expect(svg.contains(">100k</text>"))
    }

    /// The agent's work joins cooperative's estimate (and only cooperative's), priced by its figures.
    @Test func agentWorkJoinsTheCooperativeEstimate() throws {
        var report = try Self.report()
        let work = AgentWork(hits: 100_000, intents: 2_000, accesses: 160_000)
        let agent = AgentCostFigures(nanosecondsPerHit: 1_500, nanosecondsPerIntent: 50, nanosecondsPerStringAccess: 10)
        // 100,000 × 1,500 + 2,000 × 50 + 60,000 × 10 = 150.7 ms per run.
        #expect(agent.nanoseconds(for: work) == 150_700_000)
        var costs = Self.costs
        costs.agent = agent
        costs.agentSource = "test agent source"
        let runs = report.scenarios[0].runs.map { run -> CompareRun in
            var run = run
            run.agentWork = work
            return run
        }
        report.costs = costs
        report.scenarios[0] = Scenario(name: "large download", workload: "download", fileSize: 1 << 20, byteUnit: "file bytes",
                                       seed: .linuxLargeDownload, runs: runs, costs: costs, tolerancePercent: 25)
        let summary = report.scenarios[0].summary
        // Two runs' agent work over 2 MiB: 150.7 ms per MiB, on top of (3,000 × 10,000 + 3,000 × 5) ns / 2 MiB = 15.0075.
        #expect(abs((summary[.cooperative]?.agentMillisecondsPerMiB ?? 0) - 150.7) < 1e-9)
        #expect(abs((summary[.cooperative]?.overheadMillisecondsPerMiB ?? 0) - (15.0075 + 150.7)) < 1e-9)
        #expect(abs((summary[.vmmModel]?.overheadMillisecondsPerMiB ?? 0) - 91.703) < 1e-9, "vmm-model runs no agent work")
        #expect(summary[.onDemand]?.agentMillisecondsPerMiB == nil)
        let text = report.table.joined(separator: "\n")
        #expect(text.contains("165.708 [150.700]"))
        #expect(text.contains("large download: cooperative costs 1.81× vmm-model's"))
        #expect(text.contains("agent cost: 1500.0 ns per probe hit") && text.contains("test agent source"))
        // A scenario with a run that had no agent adds none (it did no agent work).
        var mixed = runs
        mixed[1].agentWork = nil
        let partial = ScenarioSummary(runs: mixed, costs: costs, tolerancePercent: 25)
        #expect(partial[.cooperative]?.agentMillisecondsPerMiB == nil)
        #expect(abs((partial[.cooperative]?.overheadMillisecondsPerMiB ?? 0) - 15.0075) < 1e-9)
    }
}
