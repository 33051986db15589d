/// One `vpio agent-cost` measurement: what the guest agent's work costs per probe hit on this machine's
/// own CPU (not under TCG), as `--json` prints it and `vpio compare` reads it.
///
/// A hit costs three things: the kprobe's dispatch (trap → handler → BPF), the BPF program's own run,
/// and the user-space agent's handling of the event the program sends. The second and third are
/// measured here on the same program and the same event consumer the agent uses; the first is measured
/// only where the kernel has kprobes, else taken from the cited publication (`cited`).
public struct AgentCostReport: Codable, Equatable, Sendable {
    public struct Spread: Codable, Equatable, Sendable {
        public var median: Double
        public var min: Double
        public var max: Double

        public init(_ samples: [Double]) {
            let sorted = samples.sorted()
            median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
            min = sorted.first ?? 0
            max = sorted.last ?? 0
        }
    }

    /// One kind of probe hit, timed in batches.
    public struct Case: Codable, Equatable, Sendable {
        /// What the stand-in site does, e.g. "out RBCR0 (shadowed register)".
        public var name: String
        /// The probed instruction: "nop" (a breakpoint trap) or "nop5" (optimizable by newer kernels).
        public var instruction: String
        /// The hit writes a DMA intent into the host ring (a CR write that starts a DMA).
        public var writesIntent: Bool
        /// Hits timed (warm-up excluded).
        public var hits: Int
        /// Device accesses one hit stands for (cx of a rep string op, 0 at a post site, else 1).
        public var accessesPerHit: Int
        /// The BPF program's own run time per hit (the kernel's BPF statistics), per batch.
        public var bpfRunNanoseconds: Spread
        /// One call of the probed stand-in (trap, uprobe dispatch, program, return), per batch.
        public var probedCallNanoseconds: Spread
        /// The same call with no probe attached.
        public var unprobedCallNanoseconds: Spread
        /// The user-space agent's handling of one event (ring buffer read, counters, full model).
        public var userNanosecondsPerEvent: Spread
        /// Exactness checks that failed (runs, events or intents not one per call); empty when exact.
        public var problems: [String]

        /// What the uprobe path adds besides the program: trap, lookup, dispatch, return.
        public var uprobePathNanoseconds: Double {
            probedCallNanoseconds.median - unprobedCallNanoseconds.median - bpfRunNanoseconds.median
        }
    }

    /// Published kprobe overheads (per hit, with a trivial handler), for kernels where they cannot be measured.
    public struct Citation: Codable, Equatable, Sendable {
        public var source: String
        public var machine: String
        /// Unoptimized: int3 trap and single-step of the probed instruction.
        public var int3Nanoseconds: Double
        /// Boosted: int3, the copied instruction run directly (no single-step); `in`/`out` are boostable.
        public var boostedNanoseconds: Double
        /// Jump-optimized: a jump to a detour buffer instead of int3.
        public var optimizedNanoseconds: Double

        /// Linux's Documentation/trace/kprobes.rst, "Optimized Probe Overhead", x86-64 row.
        public static let kernelDocumentation = Citation(
            source: "Linux Documentation/trace/kprobes.rst, \"Optimized Probe Overhead\" (x86-64 row: k, b, o)",
            machine: "Intel Xeon E5410, 2.33 GHz", int3Nanoseconds: 990, boostedNanoseconds: 430, optimizedNanoseconds: 60)
    }

    /// When it was measured (ISO 8601, UTC), and on what.
    public var measuredAt: String
    public var host: String
    /// How, in one paragraph.
    public var method: String
    public var cases: [Case]
    /// kprobe dispatch measured directly (entry kprobe on a syscall, same program), where the kernel has kprobes.
    public var kprobeDispatchNanoseconds: Spread?
    /// How the kprobe dispatch was measured, or why it was not.
    public var kprobeNote: String
    public var cited: Citation
    /// What the figures do not include.
    public var leavesOut: [String]

    public init(measuredAt: String, host: String, method: String, cases: [Case], kprobeDispatchNanoseconds: Spread?,
                kprobeNote: String, cited: Citation = .kernelDocumentation, leavesOut: [String]) {
        self.measuredAt = measuredAt
        self.host = host
        self.method = method
        self.cases = cases
        self.kprobeDispatchNanoseconds = kprobeDispatchNanoseconds
        self.kprobeNote = kprobeNote
        self.cited = cited
        self.leavesOut = leavesOut
    }
}

extension AgentCostReport {
    private var trapCases: [Case] { cases.filter { $0.instruction == "nop" } }

    private static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    /// The program's run time per hit that writes no intent (median over those cases).
    public var bpfNanosecondsPerHit: Double { Self.median(trapCases.filter { !$0.writesIntent }.map(\.bpfRunNanoseconds.median)) }
    /// The program's run time per hit that writes a DMA intent.
    public var bpfNanosecondsPerIntentHit: Double { Self.median(trapCases.filter(\.writesIntent).map(\.bpfRunNanoseconds.median)) }
    /// The user-space agent's time per event of one access or none (median over those cases).
    public var userNanosecondsPerEvent: Double {
        Self.median(trapCases.filter { $0.accessesPerHit <= 1 }.map(\.userNanosecondsPerEvent.median))
    }
    /// The user-space agent's time for each further access of a rep string op's event (its full model
    /// runs once per access), from the string case.
    public var userNanosecondsPerStringAccess: Double {
        Self.median(trapCases.filter { $0.accessesPerHit > 1 }.map {
            Swift.max(0, $0.userNanosecondsPerEvent.median - userNanosecondsPerEvent) / Double($0.accessesPerHit - 1)
        })
    }
    /// The kprobe dispatch per hit the estimate uses: measured, else the cited unoptimized (int3) figure —
    /// the largest of the three, so the agent is not made to look cheaper than it may be.
    public var dispatchNanoseconds: Double { kprobeDispatchNanoseconds?.median ?? cited.int3Nanoseconds }

    /// The in-guest cost of a hit that writes no intent and stands for at most one access: dispatch +
    /// program + user space.
    public var nanosecondsPerHit: Double { dispatchNanoseconds + bpfNanosecondsPerHit + userNanosecondsPerEvent }

    /// What writing a DMA intent adds to a hit's program run.
    public var intentNanoseconds: Double { Swift.max(0, bpfNanosecondsPerIntentHit - bpfNanosecondsPerHit) }

    /// Every case's counts were exact.
    public var exact: Bool { cases.allSatisfy(\.problems.isEmpty) }

    /// One line saying where the per-hit figures come from.
    public var source: String {
        let dispatch = kprobeDispatchNanoseconds != nil
            ? "kprobe dispatch measured here"
            : "kprobe dispatch cited: \(cited.source), unoptimized (int3) \(format(cited.int3Nanoseconds)) ns on \(cited.machine)"
        return "`vpio agent-cost` on this machine's CPU (\(host)), \(measuredAt): BPF program \(format(bpfNanosecondsPerHit)) ns per hit "
            + "(\(format(bpfNanosecondsPerIntentHit)) with a DMA intent; kernel BPF statistics over the agent's own program on a uprobe), "
            + "user-space agent \(format(userNanosecondsPerEvent)) ns per event and \(format(userNanosecondsPerStringAccess)) per further "
            + "access of a string op; \(dispatch)"
    }

    private func format(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(abs(tenths % 10))"
    }
}
