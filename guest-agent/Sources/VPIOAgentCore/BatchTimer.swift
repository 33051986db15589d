import CLibBPF
import CVPIOAgentShim
import Glibc

/// Times batches of probe hits for `ProbeCostBench`: wall time with and without the probe, the
/// program's run time (BPF statistics), and the user-space consumption of the events.
struct BatchTimer {
    let bpf: AgentBPFObject
    let ring: SharedRing
    let events: EventStream
    let options: ProbeCostBench.Options

    /// One stand-in's case: attached at its site as site `id`, timed, detached.
    func measure(_ standIn: ProbeCostBench.StandIn, id: Int) throws -> AgentCostReport.Case {
        try bpf.describeSite(id: id, kind: standIn.kind, width: standIn.width, rep: standIn.kind == .stringIn)
        let site = try CodeLocation.of(address: vpio_cost_probe_address(standIn.nop5 ? 1 : 0))
        let port = UInt32(ProbeCostBench.bar0Base) + UInt32(standIn.offset)
        let call = { standIn.nop5 ? vpio_cost_site_nop5(port, standIn.value, standIn.count) : vpio_cost_site_int3(port, standIn.value, standIn.count) }
        let unprobed = (0..<options.batches).map { _ in timeCalls(call) }
        try bpf.attachUprobe(id: id, binary: site.path, fileOffset: site.fileOffset)
        defer { bpf.detach(id) }
        for _ in 0..<options.warmup { _ = call() }
        events.consume()
        var probed: [Double] = [], program: [Double] = [], user: [Double] = [], problems: [String] = []
        for batch in 0..<options.batches {
            let runsBefore = bpf.runStats(), intentsBefore = ring.intentsWritten, eventsBefore = events.counter.events
            probed.append(timeCalls(call))
            let runsAfter = bpf.runStats(), intentsAfter = ring.intentsWritten
            let consumeStart = monotonicNanoseconds()
            events.consume()
            let consumed = events.counter.events - eventsBefore
            user.append(Double(monotonicNanoseconds() - consumeStart) / Double(max(consumed, 1)))
            guard let runsBefore, let runsAfter else { throw AgentError("the kernel gives no BPF run statistics for the program") }
            let runs = runsAfter.runs - runsBefore.runs
            program.append(Double(runsAfter.nanoseconds - runsBefore.nanoseconds) / Double(max(runs, 1)))
            let hits = UInt64(options.hitsPerBatch), intents = intentsAfter - intentsBefore
            if runs != hits { problems.append("batch \(batch): \(runs) program runs for \(hits) calls") }
            if consumed != hits { problems.append("batch \(batch): \(consumed) events for \(hits) calls") }
            if intents != (standIn.writesIntent ? hits : 0) { problems.append("batch \(batch): \(intents) intents for \(hits) calls") }
        }
        return AgentCostReport.Case(
            name: standIn.name, instruction: standIn.nop5 ? "nop5" : "nop", writesIntent: standIn.writesIntent,
            hits: options.batches * options.hitsPerBatch, accessesPerHit: Int(standIn.count), bpfRunNanoseconds: .init(program), probedCallNanoseconds: .init(probed),
            unprobedCallNanoseconds: .init(unprobed), userNanosecondsPerEvent: .init(user), problems: problems)
    }

    /// Per call of getppid(): with an entry kprobe at `function` running the program, minus without,
    /// minus the program's own run time.
    func kprobeDispatch(id: Int, function: String) throws -> AgentCostReport.Spread {
        try bpf.describeSite(id: id, kind: .portIn, width: 1, rep: false)
        let call = { UInt64(bitPattern: Int64(getppid())) }
        let unprobed = AgentCostReport.Spread((0..<options.batches).map { _ in timeCalls(call) }).median
        try bpf.attachKprobe(id: id, function: function)
        defer { bpf.detach(id) }
        for _ in 0..<options.warmup { _ = call() }
        var dispatch: [Double] = []
        for _ in 0..<options.batches {
            guard let before = bpf.runStats() else { throw AgentError("the kernel gives no BPF run statistics for the program") }
            let probed = timeCalls(call)
            guard let after = bpf.runStats() else { throw AgentError("the kernel gives no BPF run statistics for the program") }
            events.consume()
            let program = Double(after.nanoseconds - before.nanoseconds) / Double(max(after.runs - before.runs, 1))
            dispatch.append(probed - unprobed - program)
        }
        return .init(dispatch)
    }

    /// Wall nanoseconds per call over one batch.
    private func timeCalls(_ call: () -> UInt64) -> Double {
        var sink: UInt64 = 0
        let start = monotonicNanoseconds()
        for _ in 0..<options.hitsPerBatch { sink &+= call() }
        let elapsed = monotonicNanoseconds() - start
        blackHole(sink)
        return Double(elapsed) / Double(options.hitsPerBatch)
    }
}

/// Keeps a value alive so the timed loop is not optimized away.
@inline(never)
func blackHole(_ value: UInt64) {
    if value == 0x5eed_5eed_5eed_5eed { print("") }
}

/// CLOCK_MONOTONIC in nanoseconds.
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    // SAFETY: `ts` lives for the call; the kernel writes one timespec.
    unsafe clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Where a code address of this process lies in its file (a uprobe is placed by file and file offset).
struct CodeLocation: Equatable {
    var path: String
    var fileOffset: UInt64

    static func of(address: UInt) throws -> CodeLocation {
        guard let maps = readFile("/proc/self/maps", limit: 1 << 22) else { throw AgentError("cannot read /proc/self/maps") }
        guard let location = parse(maps: maps, address: UInt64(address)) else {
            throw AgentError("address 0x\(String(address, radix: 16)) is in no file mapping of /proc/self/maps")
        }
        return location
    }

    /// From /proc/PID/maps text ("start-end perms offset dev inode path"): the file and offset of `address`.
    static func parse(maps: String, address: UInt64) -> CodeLocation? {
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6, let dash = fields[0].firstIndex(of: "-"),
                  let start = UInt64(fields[0][..<dash], radix: 16), let end = UInt64(fields[0][fields[0].index(after: dash)...], radix: 16),
                  let offset = UInt64(fields[2], radix: 16), start <= address, address < end else { continue }
            let path = fields[5].drop { $0 == " " }
            guard path.hasPrefix("/") else { return nil }
            return CodeLocation(path: String(path), fileOffset: address - start + offset)
        }
        return nil
    }
}
