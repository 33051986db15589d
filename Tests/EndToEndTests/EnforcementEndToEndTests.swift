import Foundation
import Testing
import VPIOLaunch
import VPIOProvision

/// Issue 6 with real guests: cooperative mode enforced by vpio-host — only DMA starts hooked and
/// verified against the agent's intents, with fallback when they are missing or wrong. Three guest
/// boots: a large download with the agent; the agent killed mid-download; one boot of attacks (a lying,
/// a garbage, a flooding and an out-of-RAM ring from vpio-tamper, then vpio-rogue's raw remote writes
/// into the PROM and outside SRAM) between two downloads. vpio-host serves one guest per process and
/// grants it all of SRAM (host-monitor/SECURITY.md), so "other guests on the same host process" do not
/// arise here; what the attacks must not break is this guest's own traffic and the host itself.
@Suite("End to end: cooperative mode enforced (issue 6)", .serialized)
struct EnforcementEndToEndTests {
    /// One `vpio run` with its result JSON, vpio-host's statistics and the exit ledger.
    struct Run: Sendable {
        var status: Int32
        var result: RunResult
        var output: String
        var stats: Stats
        var ledger: [String: Int]

        /// The parts of vpio-host's `--stats-json` these tests and TamperEndToEndTests read, by name:
        /// keys not listed here are ignored, so a counter the host drops breaks only a test that reads it.
        struct Stats: Decodable, Sendable {
            struct Switch: Decodable, Sendable { var access: Int; var from: String; var to: String; var reason: String }
            struct Violation: Decodable, Sendable { var access: Int; var mode: String; var kind: String; var start: Int; var reason: String }
            struct Enforcement: Decodable, Sendable {
                var configured: String
                var current: String
                var dmaStarts: Int
                var denied: Int
                var switches: [Switch]
                var violations: [Violation]
                var returnsToCooperative: Int
                /// Allowed DMAs outside SRAM that touch nothing a guest owns (PROM writes, memory probes).
                var anomalies: Int
            }
            struct Agent: Decodable, Sendable {
                var registrations: Int
                var rejections: Int
                var unregistrations: Int
                var recordsLost: Int
                var recordsMalformed: Int
                var sequenceWraps: Int
            }
            struct Intents: Decodable, Sendable { var hits: Int; var misses: Int; var mismatches: Int }
            struct Checks: Decodable, Sendable {
                var intents: Intents
                /// What the host served since the previous DMA start when the agent's count first fell behind.
                var firstMismatchAccesses: String?
            }
            var enforcement: Enforcement
            var agent: Agent
            var agentChecks: Checks
        }

        /// The switch back to cooperative after the agent registered (the host leaves cooperative at the
        /// boot's first DMA start: no agent is registered yet).
        var returnToCooperative: Stats.Switch? {
            stats.enforcement.switches.first { $0.from == "vmm-model" && $0.to == "cooperative" }
        }
    }

    private struct Ledger: Decodable { struct Mode: Decodable { var mode: String; var exits: Int }; var modes: [Mode] }

    static func run(_ arguments: [String]) throws -> Run {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-enforce-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let resultPath = dir.appendingPathComponent("result.json"), ledgerPath = dir.appendingPathComponent("ledger.json")
        let host = EndToEnd.binaryDirectory.appendingPathComponent("vpio-host").path
        let run = try EndToEnd.run(arguments + ["--agent", "--host-binary", host,
                                                "--result-json", resultPath.path, "--ledger-json", ledgerPath.path])
        let result = try JSONDecoder().decode(RunResult.self, from: Data(contentsOf: resultPath))
        let statsText = try #require(result.hostStatisticsJSON, "vpio-host wrote no statistics")
        let stats = try JSONDecoder().decode(Run.Stats.self, from: Data(statsText.utf8))
        let ledger = try JSONDecoder().decode(Ledger.self, from: Data(contentsOf: ledgerPath))
        return Run(status: run.status, result: result, output: run.output, stats: stats,
                   ledger: Dictionary(uniqueKeysWithValues: ledger.modes.map { ($0.mode, $0.exits) }))
    }

    /// "agent counters inconsistent (agent saw A accesses since registration, host served H)" with A < H.
    static func agentSawFewer(_ reason: String) -> Bool {
        guard reason.contains("agent counters inconsistent"),
              let saw = reason.range(of: "agent saw "), let served = reason.range(of: "host served ") else { return false }
        let number = { (from: String.Index) in Int(reason[from...].prefix { $0.isNumber }) }
        guard let agent = number(saw.upperBound), let host = number(served.upperBound) else { return false }
        return agent < host
    }

    static let enabled = ConditionTrait.enabled(if: EndToEnd.skipReason == nil, Comment(rawValue: EndToEnd.skipReason ?? ""))

    @Test("2 MiB download in cooperative mode: checksum, no denial, no missed intent, cooperative exits < vmm-model's",
          enabled, .timeLimit(.minutes(5)))
    func cooperativeLargeDownload() throws {
        let run = try Self.run(["--workloads", "download", "--size", "2M"])
        #expect(run.status == 0, "\(run.result.failures)")
        #expect(run.result.download?.checksumOK == true)
        #expect(run.result.download?.bytes == 2 << 20)
        let enforcement = run.stats.enforcement
        #expect(enforcement.configured == "cooperative")
        #expect(enforcement.denied == 0 && enforcement.violations.isEmpty)
        #expect(run.returnToCooperative != nil, "the host never returned to cooperative: \(enforcement.switches)")
        // Cooperative is left only while no agent is registered: at boot, before the agent attaches, and
        // — when the guest still starts a DMA during shutdown — after the agent unregistered cleanly.
        // Never for a missing or wrong intent while it was registered. One exception the agent declares:
        // the kernel refuses to probe `.cold` code, and 8390's interrupt handler has an `out` there (its
        // "too much work" path acknowledges ISR); when that path runs, the agent sees fewer accesses than
        // the host served, and the host rightly leaves cooperative on the count mismatch.
        let declaredBlind = (Int(run.result.agentSummary?["refused_sites"] ?? "0") ?? 0) > 0
        let leaving = enforcement.switches.filter { $0.from == "cooperative" }
        #expect(!leaving.isEmpty && leaving.allSatisfy { $0.reason.contains("no agent registered")
                || (declaredBlind && Self.agentSawFewer($0.reason)) },
                "\(enforcement.switches); accesses before the first count mismatch: \(run.stats.agentChecks.firstMismatchAccesses ?? "none")")
        let intents = run.stats.agentChecks.intents
        #expect(intents.misses == 0 && intents.mismatches == 0 && intents.hits > 1000)
        #expect(run.stats.agent.registrations == 1 && run.stats.agent.recordsLost == 0)
        let cooperative = try #require(run.ledger["cooperative"]), vmm = try #require(run.ledger["vmm-model"])
        print("issue 6: cooperative exits \(cooperative), vmm-model exits \(vmm) (ratio 1/\(vmm / max(cooperative, 1))), "
              + "emulated \(run.ledger["emulated"] ?? -1); intents hit \(intents.hits), DMA starts \(enforcement.dmaStarts)")
        // Exits are bitmap exits (issue 12): cooperative traps CR writes, a strict subset of vmm-model's ports.
        #expect(cooperative < vmm, "cooperative \(cooperative) vs vmm-model \(vmm)")
    }

    @Test("agent SIGKILLed 8 s into a 2 MiB download: fallback at a DMA start after registration, download intact, no denial",
          enabled, .timeLimit(.minutes(5)))
    func agentKilledMidDownload() throws {
        let run = try Self.run(["--workloads", "kill-agent,download", "--size", "2M"])
        #expect(run.status == 0, "\(run.result.failures)")
        #expect(run.result.download?.checksumOK == true)
        #expect(run.result.checks["kill-agent"]?.ok == true)
        #expect(run.output.contains("VPIO-RESULT agent killed"), "the agent was never killed")
        // SIGKILL leaves no probes behind: the kernel drops the links with the dead process's descriptors.
        #expect(run.output.contains("kprobes_left=0"), "kprobes left behind after the agent was killed")
        let enforcement = run.stats.enforcement
        let back = try #require(run.returnToCooperative, "cooperative never came back after registration: \(enforcement.switches)")
        let fallback = try #require(enforcement.switches.first { $0.from == "cooperative" && $0.access > back.access },
                                    "no fallback after the kill: \(enforcement.switches)")
        print("issue 6: agent killed; returned to cooperative at access \(back.access), fell back at \(fallback.access): \(fallback.reason)")
        #expect(fallback.to == "vmm-model")
        // The kernel drops a killed agent's ~210 kprobe links one by one as its descriptors close, so for a
        // moment some sites still probe and others no longer do: the CR write's probe can still write the
        // intent while an access at a site already gone went uncounted. The host then finds the intent but
        // the agent's access count short of its own (AgentMonitor.inconsistency()), which SECURITY.md makes
        // a fallback reason like a missing or wrong intent.
        #expect(fallback.reason.contains("intent missing") || fallback.reason.contains("intent mismatch")
                || fallback.reason.contains("agent counters inconsistent"), "\(fallback.reason)")
        #expect(enforcement.current == "vmm-model")
        #expect(enforcement.denied == 0 && enforcement.violations.isEmpty, "\(enforcement.violations)")
    }

    /// The attack boot, shared by the rogue and tamper tests: a download (the host reaches cooperative),
    /// the four tampered rings, the rogue's writes into the PROM, and a download after them all.
    static let attacks: Result<Run, RunFailed> = {
        do {
            return .success(try run(["--workloads", "download,tamper-lie,tamper-garbage,tamper-flood,tamper-outside,rogue-probe-memory,download",
                                     "--size", "1M"]))
        } catch {
            return .failure(RunFailed(description: "\(error)"))
        }
    }()

    struct RunFailed: Error, CustomStringConvertible { var description: String }

    /// vpio-host grants the guest all of SRAM, so a remote write into the read-only PROM touches nothing
    /// the guest does not own: SECURITY.md has it allowed and counted as an anomaly, not denied.
    /// `rogue-probe-memory` writes a pattern into the PROM (and at undecoded 0x2000) with raw port I/O,
    /// past the driver, and reads it back: its line shows whether anything landed. Its fields are checked
    /// here directly, not only its ok.
    @Test("rogue raw-port remote writes into the PROM and outside SRAM: allowed, harmless, counted as anomalies; NIC keeps serving",
          enabled, .timeLimit(.minutes(5)))
    func rogueRemoteWrite() throws {
        let run = try Self.attacks.get()
        let rogue = try #require(run.result.checks["rogue-probe-memory"], "no rogue-probe-memory result")
        let fields = rogue.fields
        print("issue 6: rogue-probe-memory " + fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        #expect(rogue.ok, "\(fields)")
        // Each read, write and read back completed (RDC), and the PROM reads back as it was, not as the pattern.
        #expect(fields["completed_0000"] == "3/3" && fields["completed_2000"] == "3/3", "\(fields)")
        #expect(fields["prom_before"] != nil && fields["prom_after"] == fields["prom_before"]
                && fields["prom_after"] != fields["pattern"], "the PROM changed: \(fields)")
        // Allowed, not denied: the capability's violations did not move, its anomalies did.
        #expect(fields["violations"] != nil && fields["violations"] == fields["violations_before"], "\(fields)")
        let anomaliesBefore = try #require(fields["anomalies_before"].flatMap { Int($0) })
        let anomaliesAfter = try #require(fields["anomalies_after"].flatMap { Int($0) })
        #expect(anomaliesAfter > anomaliesBefore, "\(fields)")
        let enforcement = run.stats.enforcement
        #expect(enforcement.denied == 0 && enforcement.violations.isEmpty,
                "denied: \(enforcement.violations.map { "\($0.kind) at \($0.start) in \($0.mode): \($0.reason)" })")
        #expect(enforcement.anomalies > 0)
        print("issue 6: rogue allowed; anomalies \(enforcement.anomalies), denied \(enforcement.denied); "
              + "switches \(enforcement.switches.map { "\($0.from)→\($0.to) (\($0.reason))" })")
        // The downloads before and after the rogue both completed intact.
        let lines = run.output.split(separator: "\n").compactMap { ResultLine.parse(String($0)) }
        let rogueLine = try #require(lines.firstIndex { $0.kind == "rogue-probe-memory" })
        let downloads = lines.indices.filter { lines[$0].kind == "download" }
        #expect(downloads.count == 2 && downloads.allSatisfy { lines[$0].status == "ok" }, "\(downloads.map { lines[$0] })")
        #expect(downloads.first.map { $0 < rogueLine } == true && downloads.last.map { $0 > rogueLine } == true,
                "the rogue did not run between the two downloads")
    }

    @Test("tampered agent rings: each rejected with its own reason; vpio-host keeps serving and exits cleanly",
          enabled, .timeLimit(.minutes(5)))
    func tamperedAgent() throws {
        let run = try Self.attacks.get()
        #expect(run.status == 0, "\(run.result.failures)")
        #expect(run.result.hostErrors.isEmpty, "\(run.result.hostErrors)")
        let checks = run.result.checks
        // outside: rejected at registration, last_error 2 (page address).
        #expect(checks["tamper-outside"]?.fields["last_error"] == "2" && checks["tamper-outside"]?.fields["rejected"] == "1")
        #expect(run.stats.agent.rejections >= 1)
        // garbage and flood: counted, not trusted.
        #expect(checks["tamper-garbage"]?.ok == true && run.stats.agent.recordsMalformed > 0)
        #expect(checks["tamper-flood"]?.ok == true && run.stats.agent.recordsLost > 0)
        // lie: registered while cooperative was enforced, then an intent mismatch made the host fall back.
        let lie = try #require(checks["tamper-lie"])
        #expect(lie.ok && lie.fields["mode_before"] == "2" && lie.fields["fallback"] == "1", "\(lie.fields)")
        let mismatch = run.stats.enforcement.switches.first { $0.reason.contains("intent mismatch") }
        #expect(mismatch?.from == "cooperative" && mismatch?.to == "vmm-model", "\(run.stats.enforcement.switches)")
        print("issue 6: tamper — outside last_error=\(checks["tamper-outside"]?.fields["last_error"] ?? "?"), "
              + "recordsMalformed=\(run.stats.agent.recordsMalformed), recordsLost=\(run.stats.agent.recordsLost), "
              + "lie switch: \(mismatch?.reason ?? "none"); registrations=\(run.stats.agent.registrations) rejections=\(run.stats.agent.rejections)")
        // Both downloads around the attacks (the first sets up cooperative mode) succeeded.
        #expect(run.output.components(separatedBy: "VPIO-RESULT download ").count - 1 == 2)
        #expect(run.result.download?.checksumOK == true)
    }
}
