import Glibc
import Testing
@testable import VPIOAgentCore

/// `vpio agent-cost`'s measurement: the agent's real program on this kernel, at the user-space stand-ins.
@Suite(.serialized) struct AgentCostTests {
    static let skipReason: String? = {
        if geteuid() != 0 { return "needs root (BPF, uprobes)" }
        if toolchainClang == nil { return "needs the Swift toolchain's clang" }
        return ProbeCostBench.uprobeUnavailableReason()
    }()

    /// Every case is exact (one program run, one event, and for the DMA-starting CR write one intent, per
    /// call), and the figures are positive and in the right order: a probed call costs more than an
    /// unprobed one by at least the program's run time.
    @Test(.enabled(if: skipReason == nil, Comment(rawValue: skipReason ?? "")))
    func measuresTheAgentsProgramExactly() throws {
        let object = try BPFObjectTests.compile()
        defer { unlink(object) }
        var options = ProbeCostBench.Options()
        options.batches = 3
        options.hitsPerBatch = 2_000
        options.warmup = 200
        let report = try ProbeCostBench(bpfObjectPath: object, options: options).run(measuredAt: "test")
        print("agent-cost (test run): \(report.source)")
        #expect(report.cases.count == ProbeCostBench.standIns.count)
        for c in report.cases {
            #expect(c.problems.isEmpty, "\(c.name): \(c.problems)")
            #expect(c.hits == 6_000)
            #expect(c.bpfRunNanoseconds.median > 0, "\(c.name)")
            #expect(c.probedCallNanoseconds.median > c.unprobedCallNanoseconds.median + c.bpfRunNanoseconds.median, "\(c.name)")
            #expect(c.userNanosecondsPerEvent.median > 0, "\(c.name)")
        }
        #expect(report.cases.filter(\.writesIntent).count == 1)
        #expect(report.nanosecondsPerHit > report.dispatchNanoseconds)
        if ProbeCostBench.kprobeUnavailableReason() != nil {
            #expect(report.kprobeDispatchNanoseconds == nil && report.kprobeNote.hasPrefix("not measured: "))
            #expect(report.dispatchNanoseconds == report.cited.int3Nanoseconds)
        } else {
            #expect(report.kprobeDispatchNanoseconds != nil)
        }
    }

    /// The exactness check can fail: a DMA-starting CR write whose site is described as an `in` runs the
    /// program but writes no intent, and the case says so.
    @Test(.enabled(if: skipReason == nil, Comment(rawValue: skipReason ?? "")))
    func aMisdescribedSiteIsNotExact() throws {
        let object = try BPFObjectTests.compile()
        defer { unlink(object) }
        let bpf = try AgentBPFObject(path: object)
        defer { bpf.close() }
        try bpf.configure(bar0Base: ProbeCostBench.bar0Base)
        try bpf.load()
        let ring = try SharedRing(mapFD: try #require(bpf.mapDescriptor("ring")))
        let events = try EventStream(eventsMapFD: try #require(bpf.mapDescriptor("events")), counter: EventCounter(bar0Base: ProbeCostBench.bar0Base))
        var options = ProbeCostBench.Options()
        options.batches = 1
        options.hitsPerBatch = 500
        options.warmup = 0
        let timer = BatchTimer(bpf: bpf, ring: ring, events: events, options: options)
        var standIn = ProbeCostBench.standIns[1]
        standIn.kind = .portIn
        let measured = try timer.measure(standIn, id: 7)
        #expect(measured.problems.contains { $0.contains("0 intents for 500 calls") }, "\(measured.problems)")
    }

    @Test func codeLocationFromMaps() {
        let maps = """
            55d4c0a00000-55d4c0a20000 r--p 00000000 fe:01 123 /usr/bin/vpio
            55d4c0a20000-55d4c0c00000 r-xp 00020000 fe:01 123 /usr/bin/vpio
            7ffd1a000000-7ffd1a021000 rw-p 00000000 00:00 0 [stack]
            """
        #expect(CodeLocation.parse(maps: maps, address: 0x55d4c0a21234) == CodeLocation(path: "/usr/bin/vpio", fileOffset: 0x21234))
        #expect(CodeLocation.parse(maps: maps, address: 0x7ffd1a000010) == nil, "not a file mapping")
        #expect(CodeLocation.parse(maps: maps, address: 0x1000) == nil)
    }

    /// The figures the estimate uses, from the cases: median over the cases of each kind.
    @Test func derivedFigures() {
        func spread(_ v: Double) -> AgentCostReport.Spread { .init([v]) }
        func c(_ name: String, _ instruction: String, intent: Bool, accesses: Int, bpf: Double, user: Double) -> AgentCostReport.Case {
            .init(name: name, instruction: instruction, writesIntent: intent, hits: 1, accessesPerHit: accesses, bpfRunNanoseconds: spread(bpf),
                  probedCallNanoseconds: spread(1000), unprobedCallNanoseconds: spread(10), userNanosecondsPerEvent: spread(user), problems: [])
        }
        let report = AgentCostReport(measuredAt: "t", host: "h", method: "m", cases: [
            c("out", "nop", intent: false, accesses: 1, bpf: 200, user: 600),
            c("cr", "nop", intent: true, accesses: 1, bpf: 260, user: 1000),
            c("in", "nop", intent: false, accesses: 1, bpf: 190, user: 500),
            c("rep", "nop", intent: false, accesses: 65, bpf: 210, user: 7_000),
            c("out nop5", "nop5", intent: false, accesses: 1, bpf: 1, user: 1),
        ], kprobeDispatchNanoseconds: nil, kprobeNote: "not measured: test", leavesOut: [])
        #expect(report.bpfNanosecondsPerHit == 200)          // median of 190, 200, 210 (the nop5 case is not a trap case)
        #expect(report.intentNanoseconds == 60)
        #expect(report.userNanosecondsPerEvent == 600)       // median of 500, 600, 1000 (single-access cases)
        #expect(report.userNanosecondsPerStringAccess == 100) // (7,000 − 600) / 64
        #expect(report.nanosecondsPerHit == 990 + 200 + 600)
    }
}
