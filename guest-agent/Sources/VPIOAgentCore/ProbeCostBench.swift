import CLibBPF
import CVPIOAgentShim
import Glibc

/// `vpio agent-cost`: the agent's own BPF object and event consumer, timed on this machine's CPU.
///
/// The program is a kprobe program, and a uprobe runs the same program type with the same `pt_regs`
/// context, so it is attached unchanged at user-space stand-ins of the driver's sites
/// (`vpio_cost_site_*` in the shim: at the probe, dx = port, ax = value, cx = count, as at an
/// `out`/`in`/`rep ins`). Each batch of calls is timed on the wall clock and by the kernel's BPF
/// statistics (the program's own run time); then the events it sent are consumed by the agent's
/// `EventCounter` (counters and the full NE2000 model), timed too. Every count is checked: one program
/// run, one event and (for a DMA-starting CR write) one intent per call.
public struct ProbeCostBench {
    public struct Options: Sendable {
        public var batches = 10
        public var hitsPerBatch = 10_000
        public var warmup = 2_000
        public init() {}
    }

    /// A stand-in site: what the program is told about it and the registers it sees there.
    struct StandIn {
        var name: String
        var kind: SiteKind
        var width = 1
        var offset: UInt16
        var value: UInt32 = 0
        var count: UInt32 = 1
        var writesIntent = false
        var nop5 = false
    }

    /// The BAR0 base the program is configured with (any port range will do: nothing is accessed).
    static let bar0Base: UInt16 = 0xc000

    /// The hits a packet's driver work is made of (register writes, a DMA-starting CR write, register
    /// reads and their post sites, the data port's string reads), and one at a five-byte nop.
    static let standIns: [StandIn] = [
        StandIn(name: "out RBCR0 (a shadowed register)", kind: .portOut, offset: 0x0a, value: 0x40),
        StandIn(name: "out CR = 0x0a (starts a remote read: DMA intent)", kind: .portOut, offset: 0x00, value: 0x0a, writesIntent: true),
        StandIn(name: "in ISR", kind: .portIn, offset: 0x07),
        StandIn(name: "post site of in ISR (value read)", kind: .afterIn, offset: 0x07, value: 0x40, count: 0),
        StandIn(name: "rep insl data port (64 accesses)", kind: .stringIn, width: 4, offset: 0x10, count: 64),
        StandIn(name: "out RBCR0 at a five-byte nop", kind: .portOut, offset: 0x0a, value: 0x40, nop5: true),
    ]

    public let options: Options
    public let bpfObjectPath: String

    public init(bpfObjectPath: String, options: Options = Options()) {
        self.bpfObjectPath = bpfObjectPath
        self.options = options
    }

    /// Why uprobes cannot be used here, or nil when they can.
    public static func uprobeUnavailableReason() -> String? {
        fileExists("/sys/bus/event_source/devices/uprobe/type")
            ? nil : "this kernel has no uprobe PMU (/sys/bus/event_source/devices/uprobe missing: CONFIG_UPROBE_EVENTS)"
    }

    /// Why kprobes cannot be used here, or nil when they can.
    public static func kprobeUnavailableReason() -> String? {
        fileExists("/sys/bus/event_source/devices/kprobe/type")
            ? nil : "this kernel has no kprobe PMU (/sys/bus/event_source/devices/kprobe missing: CONFIG_KPROBES is not set)"
    }

    /// Loads the program, times every stand-in (and the kprobe dispatch where it can), and unloads.
    public func run(measuredAt: String, progress: (String) -> Void = { _ in }) throws -> AgentCostReport {
        if let reason = Self.uprobeUnavailableReason() { throw AgentError(reason) }
        // The kernel keeps run-time statistics while this descriptor is open.
        let statistics = bpf_enable_stats(BPF_STATS_RUN_TIME)
        guard statistics >= 0 else { throw AgentError("cannot enable BPF run-time statistics: \(errnoText(errno))") }
        defer { close(statistics) }
        let bpf = try AgentBPFObject(path: bpfObjectPath)
        defer { bpf.close() }
        try bpf.configure(bar0Base: Self.bar0Base)
        try bpf.load()
        try bpf.fillCommandEffects()
        guard let ringMap = bpf.mapDescriptor("ring"), let eventsMap = bpf.mapDescriptor("events") else {
            throw AgentError("BPF object without ring/events maps")
        }
        let ring = try SharedRing(mapFD: ringMap)
        let events = try EventStream(eventsMapFD: eventsMap, counter: EventCounter(bar0Base: Self.bar0Base))
        let timer = BatchTimer(bpf: bpf, ring: ring, events: events, options: options)
        var cases: [AgentCostReport.Case] = []
        for (id, standIn) in Self.standIns.enumerated() {
            progress("\(standIn.name): \(options.batches) batches of \(options.hitsPerBatch) hits")
            cases.append(try timer.measure(standIn, id: id))
        }
        let kprobe = try measureKprobeDispatch(timer: timer, id: Self.standIns.count, progress: progress)
        return AgentCostReport(measuredAt: measuredAt, host: Self.hostDescription(), method: Self.method(options), cases: cases,
                               kprobeDispatchNanoseconds: kprobe.spread, kprobeNote: kprobe.note, leavesOut: Self.leavesOut)
    }

    /// An entry kprobe on getppid's syscall, the same program: (probed − unprobed − program) per call.
    private func measureKprobeDispatch(timer: BatchTimer, id: Int, progress: (String) -> Void) throws -> (spread: AgentCostReport.Spread?, note: String) {
        if let reason = Self.kprobeUnavailableReason() { return (nil, "not measured: \(reason)") }
        progress("kprobe dispatch: an entry kprobe on __x64_sys_getppid")
        let spread = try timer.kprobeDispatch(id: id, function: "__x64_sys_getppid")
        return (spread, "measured: an entry kprobe on __x64_sys_getppid running the same program; "
                + "getppid() with the probe − without − the program's own run time, per call")
    }

    static func method(_ options: Options) -> String {
        "the agent's BPF object (vpio_agent.bpf.o) loaded unchanged and attached as a uprobe (same program type and pt_regs "
            + "context as its kprobes) at user-space stand-ins of the driver's sites: at the probed nop, dx = port, ax = value, "
            + "cx = count as at an in/out/rep ins. \(options.batches) batches of \(options.hitsPerBatch) calls per case after "
            + "\(options.warmup) warm-up calls; per batch: the program's run time from the kernel's BPF statistics "
            + "(BPF_ENABLE_STATS), the call's wall time with and without the probe (CLOCK_MONOTONIC), and the user-space agent's "
            + "time to consume the batch's events (its EventCounter: counters and the full NE2000 model); median, min and max "
            + "over batches" + Self.buildNote
    }

    #if DEBUG
    static let buildNote = " (a debug build: the user-space figures are not the agent's; use the release build)"
    #else
    static let buildNote = " (release build, as the agent is built)"
    #endif

    static let leavesOut = [
        "the kprobe's own dispatch where the kernel has no kprobes (taken from the citation instead)",
        "cache and TLB misses of the real driver path (the stand-ins run hot in a loop)",
        "the guest kernel's code and a VM's exits around the probe (this is the host CPU, itself a nested guest)",
        "the user-space agent's heartbeat and state records (once a second)",
    ]

    static func hostDescription() -> String {
        var name = utsname()
        // SAFETY: `name` lives for the call; the kernel fills one utsname, whose fields are NUL-terminated.
        unsafe uname(&name)
        let release = unsafe withUnsafeBytes(of: name.release) { unsafe String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let cpu = readFile("/proc/cpuinfo")?.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters() } ?? "unknown CPU"
        return "Linux \(release), \(cpu)"
    }
}

private extension Substring {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
