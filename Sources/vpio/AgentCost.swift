import ArgumentParser
import Foundation
import VPIOAgentCore

struct AgentCostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent-cost",
        abstract: "Measure the guest agent's work per probe hit on this machine's own CPU (not under TCG).",
        discussion: """
            A probe hit costs the kprobe's dispatch, the BPF program's run and the user-space agent's handling of \
            the event. This loads the agent's BPF object unchanged and attaches it as a uprobe (the same program \
            type and pt_regs context as its kprobes) at user-space stand-ins of the driver's sites — at the probed \
            nop the registers hold port, value and count as at an in/out/rep ins — and times batches of hits: the \
            program's run time from the kernel's BPF statistics, each call with and without the probe, and the \
            agent's EventCounter consuming the events. Every count is checked (one program run, one event and, for \
            a DMA-starting CR write, one intent per call). Where the kernel has kprobes, their dispatch is measured \
            too (an entry kprobe on getppid's syscall); otherwise the published figures are cited (Linux's \
            Documentation/trace/kprobes.rst), and the estimate uses the unoptimized (int3) one. `vpio compare` \
            multiplies each run's probe hits by the per-hit figure.

            Exit status: 0 measured and exact, 1 a count was not exact, 2 set-up error, 3 this kernel has no \
            uprobes (the reason is printed).
            """)

    @OptionGroup var cache: CacheOptions

    @Option(help: ArgumentHelp("The agent's BPF object (default: the provisioned <cache>/agent/vpio_agent.bpf.o).", valueName: "path"))
    var bpfObject: String?

    @Option(help: "Batches per case (median and spread are over batches).")
    var batches = 10

    @Option(help: "Probe hits per batch (at most 40000: the events of a batch must fit the BPF ring buffer).")
    var hits = 10_000

    @Flag(help: "Print the report as JSON (what `vpio compare --agent-cost-json` reads).")
    var json = false

    func validate() throws {
        guard batches >= 1 else { throw ValidationError("--batches must be at least 1") }
        guard (100...40_000).contains(hits) else { throw ValidationError("--hits must be 100 to 40000") }
    }

    func run() throws {
        guard geteuid() == 0 else { throw fail(ValidationError("vpio agent-cost must run as root (BPF, uprobes)")) }
        let report: AgentCostReport
        do {
            report = try Self.measure(bpfObject: bpfObject, cache: cache, batches: batches, hits: hits, progress: json ? { _ in } : { say("[agent-cost] \($0)") })
        } catch let error as AgentError where ProbeCostBench.uprobeUnavailableReason() != nil {
            FileHandle.standardError.write(Data("vpio agent-cost: \(error)\n".utf8))
            throw ExitCode(3)
        } catch {
            throw fail(error)
        }
        if json {
            say(String(decoding: try Self.encoded(report), as: UTF8.self))
        } else {
            for line in Self.text(report) { say(line) }
        }
        if !report.exact { throw ExitCode(1) }
    }

    /// The measurement with the provisioned (or given) BPF object.
    static func measure(bpfObject: String?, cache: CacheOptions, batches: Int = 10, hits: Int = 10_000,
                        progress: (String) -> Void) throws -> AgentCostReport {
        let path = try bpfObject ?? cache.layout().agentBPFObject.path
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ValidationError("no BPF object at \(path): run `vpio provision` (it builds the agent) or pass --bpf-object")
        }
        var options = ProbeCostBench.Options()
        options.batches = batches
        options.hitsPerBatch = hits
        return try ProbeCostBench(bpfObjectPath: path, options: options)
            .run(measuredAt: ISO8601DateFormatter().string(from: Date()), progress: progress)
    }

    static func encoded(_ report: AgentCostReport) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(report)
    }

    static func text(_ report: AgentCostReport) -> [String] {
        func f(_ value: Double) -> String { String(format: "%.1f", value) }
        func spread(_ s: AgentCostReport.Spread) -> String { "\(f(s.median)) (\(f(s.min))–\(f(s.max)))" }
        var lines = ["vpio agent-cost — the guest agent's work per probe hit, on this machine's CPU: \(report.host)",
                     "  method: \(report.method)",
                     "  ns per hit, median (min–max over batches):"]
        for c in report.cases {
            lines.append("  \(c.name) [\(c.instruction)]: program \(spread(c.bpfRunNanoseconds)); call with uprobe "
                         + "\(spread(c.probedCallNanoseconds)), without \(f(c.unprobedCallNanoseconds.median)); uprobe path "
                         + "\(f(c.uprobePathNanoseconds)); user-space agent \(spread(c.userNanosecondsPerEvent)) per event")
            for problem in c.problems { lines.append("    NOT EXACT: \(problem)") }
        }
        let cited = report.cited
        lines.append("  kprobe dispatch: \(report.kprobeDispatchNanoseconds.map { "\(spread($0)) ns — " } ?? "")\(report.kprobeNote)")
        lines.append("  cited (\(cited.source), \(cited.machine)): unoptimized int3 \(f(cited.int3Nanoseconds)) ns, "
                     + "boosted \(f(cited.boostedNanoseconds)) ns (in/out are boostable), jump-optimized \(f(cited.optimizedNanoseconds)) ns")
        lines.append("  per hit (what vpio compare uses): dispatch \(f(report.dispatchNanoseconds)) + program \(f(report.bpfNanosecondsPerHit)) "
                     + "+ user space \(f(report.userNanosecondsPerEvent)) = \(f(report.nanosecondsPerHit)) ns; a DMA intent adds "
                     + "\(f(report.intentNanoseconds)) ns to its hit, each further access "
                     + "of a string op \(f(report.userNanosecondsPerStringAccess)) ns")
        lines.append("  leaves out: " + report.leavesOut.joined(separator: "; "))
        return lines
    }
}
