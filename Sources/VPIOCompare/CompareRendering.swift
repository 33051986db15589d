import Foundation
import VPIOMonitor

/// The report as a person reads it (text tables), as CSV and as JSON.
extension CompareReport {
    /// The modes in table order.
    static let modeOrder: [Mode] = [.emulated, .vmmModel, .cooperative, .onDemand, .passthrough]

    /// Text tables: exits per run (with the seed's ratio beside vmm-model), exits and estimated overhead
    /// per MiB, repeatability, then the sources of the cost figures and the notes.
    public var table: [String] {
        var lines: [String] = []
        var exits = TextTable(header: ["scenario", "run", "check", "bytes", "accesses"]
            + Self.modeOrder.flatMap { mode -> [String] in
                mode == .vmmModel ? ["vmm-model", "%", "seed %", "CR-w %"] : [mode.rawValue, "%"]
            })
        for scenario in scenarios {
            for run in scenario.runs {
                var row = [scenario.name, "#\(run.index)", run.check, "\(run.bytes)", "\(run.ledger.accesses)"]
                for mode in Self.modeOrder {
                    if let exits = run.ledger[mode]?.exits {
                        row += ["\(exits)", Self.percent(run.ledger.accesses > 0 ? Double(exits) / Double(run.ledger.accesses) : 0)]
                    } else {
                        row += ["-", "-"]
                    }
                    if mode == .vmmModel {
                        row.append(scenario.seed.map { Self.fixed($0.ratioPercent, 2) } ?? "")
                        row.append(scenario.device == "ne2000" ? run.crWriteShare.map(Self.percent) ?? "-" : "-")
                    }
                }
                exits.rows.append(row)
            }
        }
        lines.append("Exits per run (exact counts from vpio-host's ledger: what each mode's I/O bitmap traps, by port and "
            + "direction; % = exits / device accesses; seed % = the slides' \"I/O hooked\" ratio; CR-w % = CR writes / accesses, "
            + "what trapping the command register alone costs):")
        lines += exits.lines
        lines.append("")
        lines += seedExplanationLines

        var perMiB = TextTable(header: ["scenario", "MiB", "unit"] + Self.modeOrder.map(\.rawValue))
        var overhead = TextTable(header: ["scenario"] + Self.modeOrder.map(\.rawValue))
        for scenario in scenarios {
            let s = scenario.summary
            perMiB.rows.append([scenario.name, Self.fixed(Double(s.bytes) / 1_048_576, 3), scenario.byteUnit]
                + Self.modeOrder.map { mode in s[mode]?.exitsPerMiB.map { Self.fixed($0, 0) } ?? "-" })
            overhead.rows.append([scenario.name] + Self.modeOrder.map { mode in
                guard let total = s[mode]?.overheadMillisecondsPerMiB else { return "-" }
                return Self.fixed(total, 3) + (s[mode]?.agentMillisecondsPerMiB.map { " [\(Self.fixed($0, 3))]" } ?? "")
            })
        }
        lines.append("")
        lines.append("Exits per MiB moved (all runs of a scenario pooled):")
        lines += perMiB.lines
        lines.append("")
        lines.append("Estimated overhead, ms per MiB moved (exits × exit cost + model updates × model cost; cooperative adds the "
            + "agent's in-guest work, its part in brackets; figures below):")
        lines += overhead.lines
        lines += verdictLines

        var spread = TextTable(header: ["scenario", "runs"] + Self.modeOrder.map { "\($0.rawValue) % per run" }
            + ["max spread pp", "max spread % of mean", "verdict"])
        for scenario in scenarios {
            let s = scenario.summary
            let worstPoints = s.modes.map(\.ratioSpreadPoints).max() ?? 0
            let worstPercent = s.modes.map(\.ratioSpreadPercent).max() ?? 0
            let bound = "\(Self.fixed(tolerancePercent, 0)) % of mean"
            spread.rows.append([scenario.name, "\(s.runs)"]
                + Self.modeOrder.map { mode in (s[mode]?.ratioPerRun ?? []).map(Self.percent).joined(separator: " / ") }
                + [Self.fixed(worstPoints, 3), Self.fixed(worstPercent, 1),
                   s.runs < 2 ? "single run" : (s.withinTolerance ? "within \(bound)" : "OUTSIDE \(bound)")])
        }
        lines.append("")
        lines.append("Repeatability: exit ratio of each run; the largest spread (max − min) over the modes, in percentage points "
            + "and in percent of the mode's mean ratio (the tolerance):")
        lines += spread.lines

        lines.append("")
        if let ns = costs.exitNanoseconds {
            lines.append("exit cost: \(Self.fixed(ns, 1)) ns per exit (median; batches \(costs.exitNanosecondsMin.map { Self.fixed($0, 1) } ?? "?")–"
                + "\(costs.exitNanosecondsMax.map { Self.fixed($0, 1) } ?? "?") ns) — \(costs.exitSource)")
        } else {
            lines.append("exit cost: not measured — \(costs.exitSource); no overhead estimate")
        }
        let model = Self.modeOrder.compactMap { mode in costs.modelNanoseconds[mode.rawValue].map { "\(mode.rawValue) \(Self.fixed($0, 2))" } }
        lines.append("model cost (ns per update): \(model.isEmpty ? "none" : model.joined(separator: ", ")) — \(costs.modelSource)")
        if let agent = costs.agent {
            lines.append("agent cost: \(Self.fixed(agent.nanosecondsPerHit, 1)) ns per probe hit, + \(Self.fixed(agent.nanosecondsPerIntent, 1)) per "
                + "DMA intent, + \(Self.fixed(agent.nanosecondsPerStringAccess, 1)) per further access of a string op — \(costs.agentSource ?? "")")
        } else if let source = costs.agentSource {
            lines.append("agent cost: none — \(source)")
        }
        lines += notes.map { "note: \($0)" }
        return lines
    }

    /// Per scenario with both estimates: whether cooperative (agent included) costs less than vmm-model, and by how much.
    var verdictLines: [String] {
        scenarios.compactMap { scenario -> String? in
            guard let cooperative = scenario.summary[.cooperative], let agent = cooperative.agentMillisecondsPerMiB,
                  let total = cooperative.overheadMillisecondsPerMiB, let vmm = scenario.summary[.vmmModel]?.overheadMillisecondsPerMiB,
                  total > 0, vmm > 0 else { return nil }
            let verdict = total < vmm ? "beats vmm-model by \(Self.fixed(vmm / total, 2))×" : "costs \(Self.fixed(total / vmm, 2))× vmm-model's"
            return "  \(scenario.name): cooperative \(verdict) (\(Self.fixed(total, 3)) against \(Self.fixed(vmm, 3)) ms/MiB; the agent's work "
                + "\(Self.fixed(agent / total * 100, 1)) % of cooperative's)"
        }
    }

    /// The seed's ratio explained, per scenario with a seed figure: CR writes alone against the seed and
    /// vmm-model, and vmm-model's other exits by hook point.
    var seedExplanationLines: [String] {
        let explained = scenarios.filter { $0.seed != nil }.map(SeedExplanation.init)
        guard let first = explained.first else { return [] }
        var table = TextTable(header: ["scenario", "seed %", "CR-w %", "vmm-model %", "DMA starts"] + first.parts.map(\.hook))
        for e in explained {
            table.rows.append([e.scenario, e.seedPercent.map { Self.fixed($0, 2) } ?? "", Self.fixed(e.crWritePercent, 2),
                               Self.fixed(e.vmmModelPercent, 2), "\(e.dmaStarts)"]
                + e.parts.map { "\(Self.fixed($0.percentOfAccesses, 2)) (\($0.perDMAStart.map { Self.fixed($0, 2) } ?? "-"))" })
        }
        return ["The seed's ratio explained (all runs of a scenario pooled): trapping CR writes alone (CR-w %) against the seed "
            + "and vmm-model; vmm-model's other exits by hook point, % of accesses (per DMA start):"] + table.lines
            + [""] + perFrameLines(explained)
    }

    /// Accesses per frame (received + transmitted) by port and direction, a column per scenario: the
    /// ports any scenario touches at least 0.05 times per frame, busiest first.
    func perFrameLines(_ explained: [SeedExplanation]) -> [String] {
        let withFrames = explained.filter { ($0.frames ?? 0) > 0 }
        guard !withFrames.isEmpty else { return [] }
        func peak(_ key: String) -> Double { withFrames.map { $0.accessesPerFrameByPort[key, default: 0] }.max() ?? 0 }
        let keys = Set(withFrames.flatMap(\.accessesPerFrameByPort.keys)).filter { peak($0) >= 0.05 }
            .sorted { peak($0) != peak($1) ? peak($0) > peak($1) : $0 < $1 }
        var table = TextTable(header: ["port"] + withFrames.map(\.scenario))
        table.rows.append(["frames"] + withFrames.map { "\($0.frames ?? 0)" })
        table.rows.append(["all"] + withFrames.map { e in Self.fixed(e.accessesPerFrameByPort.values.reduce(0, +), 1) })
        for key in keys { table.rows.append([key] + withFrames.map { Self.fixed($0.accessesPerFrameByPort[key, default: 0], 2) }) }
        return ["Accesses per frame (received + transmitted) by port and direction (offset in BAR0, r/w), all runs pooled:"] + table.lines
    }

    /// One row per run and mode (the exact ledger counts), then one pooled row per scenario and mode
    /// (run = `all`).
    public var csv: String {
        var rows = ["scenario,workload,run,mode,accesses,exits,exit_ratio,acted_on,model_updates,bytes,byte_unit,"
            + "exits_per_mib,est_overhead_ms_per_mib,verified,seed_ratio_percent"]
        for scenario in scenarios {
            let seed = scenario.seed.map { Self.fixed($0.ratioPercent, 2) } ?? ""
            let costs = scenario.device == "ne2000" ? costs : costs.withoutModels
            for run in scenario.runs {
                let mib = Double(run.bytes) / 1_048_576
                for mode in Self.modeOrder {
                    guard let row = run.ledger[mode] else { continue }
                    let perMiB = mib > 0 ? Self.fixed(Double(row.exits) / mib, 1) : ""
                    let overhead = mib > 0 ? costs.overheadNanoseconds(mode: mode, exits: row.exits, modelUpdates: row.modelUpdates, agent: run.agentWork)
                        .map { Self.fixed($0 / 1e6 / mib, 4) } ?? "" : ""
                    rows.append([Self.csvField(scenario.name), scenario.workload, "\(run.index)", mode.rawValue, "\(run.ledger.accesses)",
                                 "\(row.exits)", "\(row.exitRatio)", "\(row.actedOn)", "\(row.modelUpdates)", "\(run.bytes)",
                                 Self.csvField(scenario.byteUnit), perMiB, overhead, "\(run.verified)",
                                 mode == .vmmModel ? seed : ""].joined(separator: ","))
                }
            }
            let s = scenario.summary
            for mode in Self.modeOrder {
                guard let m = s[mode] else { continue }
                rows.append([Self.csvField(scenario.name), scenario.workload, "all", mode.rawValue, "\(s.accesses)", "\(m.exits)",
                             "\(m.exitRatio)", "", "\(m.modelUpdates)", "\(s.bytes)", Self.csvField(scenario.byteUnit),
                             m.exitsPerMiB.map { Self.fixed($0, 1) } ?? "", m.overheadMillisecondsPerMiB.map { Self.fixed($0, 4) } ?? "",
                             "\(scenario.runs.allSatisfy(\.verified))", mode == .vmmModel ? seed : ""].joined(separator: ","))
            }
        }
        return rows.joined(separator: "\n") + "\n"
    }

    /// Pretty-printed JSON with sorted keys.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    static func percent(_ ratio: Double) -> String { fixed(ratio * 100, 2) }

    /// `value` with `digits` decimals (locale-independent).
    static func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

    /// Quotes a CSV field when it holds a comma or a quote.
    static func csvField(_ text: String) -> String {
        text.contains(",") || text.contains("\"") ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }
}

/// Columns padded to their widest cell: the first left-aligned, the rest right-aligned.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    var lines: [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: max(0, widths[column] - cell.count))
                return column == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
    }
}
