import ArgumentParser
import CLibBPF
import CVPIOAgentShim
import Glibc
import VPIOAgentCore

/// Set by SIGINT/SIGTERM; polled by the attach and event loops.
nonisolated(unsafe) var stopSignal: Int32 = 0

@main
struct VPIOAgent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpio-agent",
        abstract: "Shadow the NIC driver's register accesses with eBPF kprobes and report to the VPIO host.",
        discussion: """
            Finds the NIC and its BAR0 port range: an RTL8029 (PCI 10ec:8029, NE2000) under 8390 and \
            ne2k-pci, else an RTL8139 (10ec:8139) under 8139too loaded with use_io=1. Scans the driver's \
            .ko files for its access sites — the NE2000 drivers' in/out/ins/outs instructions, 8139too's \
            calls to the kernel's ioread/iowrite accessors (from its relocations) —, attaches one kprobe \
            program at each (the kernel refuses sites inside .cold code: accesses there are unseen), maps \
            the shared ring, registers its guest-physical pages through the VPIO capability in the NIC's \
            config space, and then counts the driver's accesses until SIGINT/SIGTERM. The in-kernel part \
            writes a DMA intent into the ring before every access that starts a DMA: an NE2000 CR write \
            starting a remote DMA or a transmit; an RTL8139 write starting a transmit (TSD, or CR setting \
            TE with descriptors pending) or leaving the receiver on a ring (CR, RBSTART, RCR while RE is on).

            Prints one line to parse on exit:
              VPIO-AGENT summary accesses=N bpf_accesses=N reads=N writes=N events=N lost=N gaps=N \
            intents=N dma_starts=N model_dma_starts=N reusable=0|1 by_port=r00:N,w00:N,... sites=N attached=N refused_sites=N \
            not_instructions=N attach_secs=S bpf_runs=N bpf_run_ns_per_hit=N bpf_misses=N device=ne2000|rtl8139 foreign=N \
            unmodelled=N registration=STATE

            Exit status: 0 on a clean stop, 1 on a setup error (message on stderr), 3 when the host has no \
            VPIO capability (use --no-register to run without it).
            """)

    @Option(help: ArgumentHelp("The BPF object (default: /usr/lib/vpio-agent/vpio_agent.bpf.o, else beside this executable).", valueName: "path"))
    var bpfObject: String?

    @Option(name: .customLong("module"), help: ArgumentHelp("A driver module file to scan (repeat for 8390 and ne2k-pci; 8139too for the RTL8139; default: searched under /lib/modules).", valueName: "path"))
    var modules: [String] = []

    @Flag(help: "Do not register the ring with the host (observe and count only).")
    var noRegister = false

    @Flag(help: "Attach, watch for --duration seconds, print the summary and detach (for tests).")
    var once = false

    @Option(help: ArgumentHelp("With --once: how long to watch.", valueName: "seconds"))
    var duration: Double = 0

    @Option(help: ArgumentHelp("Print a progress line every N seconds (0: never).", valueName: "seconds"))
    var reportEvery: Double = 0

    @Option(help: ArgumentHelp("Publish a heartbeat and a state report to the host's ring every N seconds (> 0; tests shorten it to stress the ring).",
                               valueName: "seconds"))
    var publishEvery: Double = 1

    @Option(help: ArgumentHelp("Create this file once attached (and registered), for init scripts to wait on.", valueName: "path"))
    var readyFile: String?

    @Flag(help: ArgumentHelp("Measure what a probe hit costs on this CPU instead (the BPF object on uprobe stand-ins of the driver's "
                             + "sites, and the kprobe dispatch where the kernel has kprobes: `vpio agent-cost`'s measurement, short), "
                             + "print one VPIO-RESULT agent-cost line and exit."))
    var measureCost = false

    @Flag(name: .shortAndLong, help: "List every site and libbpf's debug output.")
    var verbose = false

    func validate() throws {
        guard publishEvery > 0, publishEvery.isFinite else { throw ValidationError("--publish-every must be a positive number of seconds") }
    }

    mutating func run() throws {
        vpio_stdout_line_buffered()
        do {
            if measureCost { return try CostMeasurement(bpfObject: try Agent(options: self).bpfObjectPath()).run() }
            try Agent(options: self).run()
        } catch let error as AgentError {
            FileHandle2.error("vpio-agent: \(error.description)")
            throw ExitCode(1)
        } catch let error as AgentLookupError {
            FileHandle2.error("vpio-agent: \(error.description)")
            throw ExitCode(1)
        } catch let error as ScanError {
            FileHandle2.error("vpio-agent: \(error.description)")
            throw ExitCode(1)
        } catch let error as NoCapability {
            FileHandle2.error("vpio-agent: \(error.description)")
            throw ExitCode(3)
        }
    }
}

struct NoCapability: Error, CustomStringConvertible {
    var device: String
    var description: String {
        "host without VPIO capability: no vendor capability (ID 0x09, VPIO layout) in \(device)'s config space; this host does not read the ring (run with --no-register to observe only)"
    }
}

enum FileHandle2 {
    static func error(_ text: String) {
        var line = text + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}

func monotonicSeconds() -> Double { Double(monotonicNanoseconds()) / 1e9 }

/// The steps, in order: checks → scan → open/configure/load and map the ring → attach → register →
/// poll → summary. Each step that acquires something adds its release to `cleanups`, which `run()`
/// runs on every way out, newest first: unregister, detach every kprobe, close the object, then the
/// statistics descriptor.
struct Agent {
    var options: VPIOAgent

    func run() throws {
        let cleanups = Cleanups()
        defer { cleanups.runAll() }
        let (device, nic) = try checkPlatform()
        let sites = try scanSites(nic)
        let program = try loadBPF(bar0Base: device.ioBase, nic: nic, sites: sites, cleanups: cleanups)
        installSignalHandlers()
        let attachment = try attach(sites, program: program, cleanups: cleanups)
        let registration = try register(program.ring, device: device, cleanups: cleanups)
        let service = ServiceNotifier()
        announceReady(attachment: attachment, registration: registration, service: service)
        let counter = try poll(program, counter: EventCounter(bar0Base: device.ioBase, device: nic))
        service.notify("STOPPING=1")
        printSummary(counter: counter, program: program, siteCount: sites.count, attachment: attachment, registration: registration)
    }

    /// Root, the NIC, the driver modules, BPF and kprobes, each with a clear message; returns the NIC's
    /// function and which NIC it is (an NE2000 first, else an RTL8139).
    func checkPlatform() throws -> (PCIDevice, AgentDevice) {
        guard geteuid() == 0 else { throw AgentError("must run as root (BPF, kprobes, /proc/self/pagemap, PCI config writes)") }
        let found = [AgentDevice.ne2000, .rtl8139].lazy.compactMap { nic in
            PCIDevice.find(vendor: 0x10ec, device: nic.pciDevice).map { ($0, nic) }
        }.first
        guard let (device, nic) = found else {
            throw AgentError("device absent: no PCI function 10ec:8029 (RTL8029 / NE2000) or 10ec:8139 (RTL8139) with an I/O BAR0 in /sys/bus/pci/devices")
        }
        for module in nic.modules where access("/sys/module/\(module)", F_OK) != 0 {
            let load = nic == .ne2000 ? "modprobe 8390 ne2k-pci" : "modprobe 8139too use_io=1"
            throw AgentError("driver not loaded: /sys/module/\(module) is missing (\(load) first)")
        }
        guard access("/sys/fs/bpf", F_OK) == 0 || access("/proc/sys/kernel/unprivileged_bpf_disabled", F_OK) == 0 else {
            throw AgentError("kernel without BPF support (no /proc/sys/kernel/unprivileged_bpf_disabled): needs CONFIG_BPF_SYSCALL")
        }
        let kprobeInterfaces = ["/sys/bus/event_source/devices/kprobe/type", "/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"]
        guard kprobeInterfaces.contains(where: { access($0, F_OK) == 0 }) else {
            throw AgentError("kernel without kprobe support: none of \(kprobeInterfaces.joined(separator: ", ")) exists (CONFIG_KPROBES, CONFIG_KPROBE_EVENTS; mount tracefs)")
        }
        print("VPIO-AGENT device \(device.address) \(nic) bar0=0x\(String(device.ioBase, radix: 16))+0x\(String(device.ioSize, radix: 16))")
        return (device, nic)
    }

    /// The probe sites in the module files (libelf; decompressed when stored compressed), which must
    /// be the loaded modules.
    func scanSites(_ nic: AgentDevice) throws -> [ProbeSite] {
        let release = kernelRelease()
        let source: SiteScanner.Source = nic == .ne2000 ? .portInstructions : .accessorCalls
        let scans = try moduleFiles(nic, release: release).map { try SiteScanner.scan(path: $0, source: source) }
        for scan in scans {
            let loaded = readFile("/sys/module/\(scan.module)/srcversion")?.filter { !$0.isWhitespace }
            if let mismatch = scan.mismatch(loadedSrcversion: loaded, release: release) {
                throw AgentError("\(mismatch); pass the right file with --module")
            }
        }
        let sites = SiteScanner.assignIDs(scans)
        let cold = sites.filter(\.cold).count
        print("VPIO-AGENT modules \(scans.map { "\($0.path)(\($0.compression))" }.joined(separator: " "))")
        print("VPIO-AGENT scanned \(scans.map { "\($0.module)=\($0.sites.count)" }.joined(separator: " ")) candidates=\(sites.count) cold=\(cold)")
        return sites
    }

    /// The loaded BPF object, the ring mapped from its `ring` map, and its `events` ring buffer map.
    struct LoadedProgram {
        var bpf: AgentBPFObject
        var ring: SharedRing
        var counters: ProgramCounters
        var eventsMapFD: Int32
    }

    /// Opens, configures and loads the BPF object, fills its tables, and maps the ring.
    func loadBPF(bar0Base: UInt16, nic: AgentDevice, sites: [ProbeSite], cleanups: Cleanups) throws -> LoadedProgram {
        // Run-time statistics stay on while this descriptor is open (the summary's bpf_run_ns_per_hit).
        let statsFD = bpf_enable_stats(BPF_STATS_RUN_TIME)
        if statsFD >= 0 { cleanups.add { close(statsFD) } }
        vpio_libbpf_set_verbose(options.verbose ? 1 : 0)
        let bpf = try AgentBPFObject(path: try bpfObjectPath())
        cleanups.add { bpf.close() }
        try bpf.configure(bar0Base: bar0Base, device: nic)
        try bpf.load()
        try bpf.fillSites(sites)
        try bpf.fillCommandEffects()
        guard let ringMap = bpf.map("ring"), let eventsMap = bpf.map("events"), let statsFD = bpf.mapDescriptor("stats"),
              let statsShape = bpf.mapShape("stats") else { throw AgentError("BPF object without ring/events/stats maps") }
        // The ring before any probe fires, so intents land in a mapped ring from the first access.
        let ring = try SharedRing(mapFD: bpf_map__fd(ringMap))
        let counters = try ProgramCounters(mapFD: statsFD, valueSize: statsShape.valueSize)
        return LoadedProgram(bpf: bpf, ring: ring, counters: counters, eventsMapFD: bpf_map__fd(eventsMap))
    }

    /// What attaching found, for the summary.
    struct Attachment {
        var attached: Int
        var refused: Int
        var notInstructions: Int
        var seconds: Double
    }

    /// Attaches at every site (the post site of an `in` only when the `in` attached), then publishes the
    /// ring header with the number of access sites left unseen.
    func attach(_ sites: [ProbeSite], program: LoadedProgram, cleanups: Cleanups) throws -> Attachment {
        let bpf = program.bpf
        // Added before the first attach, so a signal or an error part-way detaches what did attach.
        cleanups.add {
            let links = bpf.linkCount, start = monotonicSeconds()
            bpf.detachAll()
            if links > 0 { print("VPIO-AGENT detached links=\(links) secs=\(format(monotonicSeconds() - start))") }
        }
        let start = monotonicSeconds()
        var outcomes: [AgentBPFObject.AttachOutcome] = []
        var attachedIDs = Set<Int>()
        for site in sites {
            if stopSignal != 0 { throw AgentError("stopped by a signal while attaching") }
            if site.kind == .afterIn, let pair = site.pair, !attachedIDs.contains(pair) { continue }
            let outcome = bpf.attach(site)
            if outcome.attached { attachedIDs.insert(site.id) }
            outcomes.append(outcome)
            if options.verbose {
                print("VPIO-AGENT site \(site.id) \(site.label) \(site.kind) w\(site.width)\(site.cold ? " cold" : "") -> \(outcome.attached ? "attached at +0x\(String(outcome.attachedOffset!, radix: 16))" : "refused: \(errnoText(outcome.error))")")
            }
        }
        let seconds = monotonicSeconds() - start
        let notInstructions = outcomes.filter(\.notAnInstruction)
        let refused = outcomes.filter { !$0.attached && !$0.notAnInstruction }
        for outcome in refused {
            print("VPIO-AGENT refused \(outcome.site.label) \(outcome.site.kind)\(outcome.site.cold ? " (cold)" : ""): \(errnoText(outcome.error))")
        }
        program.ring.publishHeader(unseenSites: UInt64(refused.filter { $0.site.kind.isAccess }.count))
        print("VPIO-AGENT attached sites=\(attachedIDs.count) refused_sites=\(refused.count) not_instructions=\(notInstructions.count) secs=\(format(seconds))")
        guard !attachedIDs.isEmpty else { throw AgentError("no site could be attached (is the kernel's kprobe support usable?)") }
        return Attachment(attached: attachedIDs.count, refused: refused.count, notInstructions: notInstructions.count, seconds: seconds)
    }

    /// Registers the ring's pages with the host through the NIC's VPIO capability (unless --no-register);
    /// returns the summary's registration state.
    func register(_ ring: SharedRing, device: PCIDevice, cleanups: Cleanups) throws -> String {
        let pages = ring.physicalPages.map { "0x" + String($0, radix: 16) }.joined(separator: ",")
        print("VPIO-AGENT ring pages=\(pages)")
        if options.noRegister { return "skipped" }
        guard let port = try CapabilityPort.locate(device: device) else { throw NoCapability(device: device.address) }
        let status = try port.register(pages: ring.physicalPages)
        // Added after the detach, so it runs before it: the host stops expecting intents before the
        // probes that write them are gone.
        cleanups.add {
            let status = try? port.unregister()
            print("VPIO-AGENT unregistered \(status.map(\.description) ?? "(status unreadable)")")
        }
        print("VPIO-AGENT register cap=0x\(String(port.offset, radix: 16)) \(status)")
        return status.registered ? "registered" : "rejected"
    }

    /// Tells whoever waits that the agent is attached (and registered): an init script polling
    /// --ready-file, systemd through $NOTIFY_SOCKET (`Type=notify`).
    func announceReady(attachment: Attachment, registration: String, service: ServiceNotifier) {
        service.notify("READY=1\nSTATUS=\(attachment.attached) probe sites attached, registration \(registration)")
        guard let readyFile = options.readyFile else { return }
        let fd = open(readyFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd >= 0 { close(fd) }
    }

    /// Consumes the probes' events until a signal (or --duration with --once), publishing heartbeat and
    /// state records to the ring; returns the counts.
    func poll(_ program: LoadedProgram, counter: EventCounter) throws -> EventCounter {
        let events = try EventStream(eventsMapFD: program.eventsMapFD, counter: counter)

        let ring = program.ring
        let started = monotonicSeconds()
        var lastBeat = started, lastReport = started
        let pollMilliseconds = Int32(max(1, min(100, options.publishEvery * 1000)))
        while stopSignal == 0 {
            let rc = events.poll(milliseconds: pollMilliseconds)
            if rc < 0 && rc != -EINTR { throw AgentError("ring_buffer__poll: \(errnoText(rc))") }
            let now = monotonicSeconds()
            if now - lastBeat >= options.publishEvery {
                lastBeat = now
                publish(ring: ring, counter: counter, counters: program.counters)
            }
            if options.reportEvery > 0, now - lastReport >= options.reportEvery {
                lastReport = now
                print("VPIO-AGENT progress accesses=\(counter.accesses) bpf_accesses=\(ring.accessesSeen) intents=\(ring.intentsWritten) events=\(counter.events)")
            }
            if options.once && now - started >= options.duration { break }
        }
        events.consume()
        publish(ring: ring, counter: counter, counters: program.counters)
        return counter
    }

    /// The line the host parses (VPIOLaunch.AgentSummary), printed before the cleanups unregister and detach.
    func printSummary(counter: EventCounter, program: LoadedProgram, siteCount: Int, attachment: Attachment, registration: String) {
        let stats = program.counters.read()
        let run = program.bpf.runStats()
        let perHit = run.map { $0.runs > 0 ? $0.nanoseconds / $0.runs : 0 } ?? 0
        print("VPIO-AGENT summary accesses=\(counter.accesses) bpf_accesses=\(program.ring.accessesSeen) reads=\(counter.totalReads) writes=\(counter.totalWrites) events=\(counter.events) lost=\(stats.events_lost) gaps=\(counter.gaps) intents=\(program.ring.intentsWritten) dma_starts=\(counter.dmaStarts) model_dma_starts=\(counter.modelDMAStarts) reusable=\(counter.reusable ? 1 : 0) by_port=\(counter.byPort) sites=\(siteCount) attached=\(attachment.attached) refused_sites=\(attachment.refused) not_instructions=\(attachment.notInstructions) attach_secs=\(format(attachment.seconds)) bpf_runs=\(run?.runs ?? 0) bpf_run_ns_per_hit=\(perHit) bpf_misses=\(run?.misses ?? 0) device=\(counter.device) foreign=\(stats.foreign) unmodelled=\(stats.unmodelled) registration=\(registration)")
        if stats.foreign > 0 {
            print("VPIO-AGENT warning: \(stats.foreign) accesses reached no port of BAR0: the driver maps the memory BAR (8139too without use_io=1), whose register offsets the agent cannot tell: no intent was written for them")
        }
    }

    /// Heartbeat and state records for the host (asynchronous state: the user-space part's job).
    func publish(ring: SharedRing, counter: EventCounter, counters: ProgramCounters) {
        let now = monotonicNanoseconds()
        var beat = vpio_record()
        beat.type = UInt16(VPIO_REC_HEARTBEAT)
        beat.time_ns = now
        beat.heartbeat.uptime_ns = now
        beat.heartbeat.accesses = counter.accesses
        ring.append(beat)
        var state = vpio_record()
        state.type = UInt16(VPIO_REC_STATE)
        state.time_ns = now
        state.state.accesses = counter.accesses
        let stats = counters.read(), lost = stats.events_lost
        state.state.dma_intents = counter.modelDMAStarts
        state.state.reusable = counter.reusable ? 1 : 0
        // The model may be wrong when events were lost, or when the program met accesses it cannot
        // place or writes it does not model; accesses at refused sites are announced separately
        // (header.unseen_sites) and cannot be detected here.
        state.state.unsure = lost > 0 || counter.gaps > 0 || stats.foreign > 0 || stats.unmodelled > 0 ? 1 : 0
        state.state.events_lost = lost
        ring.append(state)
    }

    /// The files of the driver's modules: --module, else found as modinfo finds them.
    func moduleFiles(_ nic: AgentDevice, release: String) throws -> [String] {
        if !options.modules.isEmpty { return options.modules }
        let locator = ModuleLocator(release: release)
        let modulesDep = readFile("\(locator.root)/\(release)/modules.dep", limit: 64 << 20)
        return try nic.moduleFiles.map { name throws(AgentLookupError) in try locator.locate(name, modulesDep: modulesDep) }
    }

    /// `uname -r`.
    func kernelRelease() -> String {
        var names = utsname()
        uname(&names)
        return withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    func bpfObjectPath() throws -> String {
        if let path = options.bpfObject { return path }
        let installed = "/usr/lib/vpio-agent/vpio_agent.bpf.o"
        if access(installed, R_OK) == 0 { return installed }
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if n > 0 {
            let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let beside = String(exe[..<(exe.lastIndex(of: "/") ?? exe.endIndex)]) + "/vpio_agent.bpf.o"
            if access(beside, R_OK) == 0 { return beside }
        }
        throw AgentError("BPF object not found (\(installed), or vpio_agent.bpf.o beside the executable); pass --bpf-object")
    }

    func installSignalHandlers() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in stopSignal = 1 }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
    }

    func format(_ seconds: Double) -> String {
        let hundredths = Int((seconds * 100).rounded())
        return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
    }
}

/// `--measure-cost`: a short run of `vpio agent-cost`'s measurement on this machine's kernel (in a test
/// guest: one with kprobes, whose dispatch it then measures directly), as one line for the host to parse.
struct CostMeasurement {
    var bpfObject: String

    func run() throws {
        var options = ProbeCostBench.Options()
        options.batches = 3
        options.hitsPerBatch = 2_000
        options.warmup = 200
        let report = try ProbeCostBench(bpfObjectPath: bpfObject, options: options).run(measuredAt: "now")
        let kprobe = report.kprobeDispatchNanoseconds.map { "measured kprobe_dispatch_ns=\(Int($0.median.rounded()))" } ?? "cited"
        let paths = report.cases.map(\.uprobePathNanoseconds).sorted()
        print("VPIO-RESULT agent-cost exact=\(report.exact ? 1 : 0) kprobe=\(kprobe) bpf_ns_per_hit=\(Int(report.bpfNanosecondsPerHit.rounded())) "
              + "bpf_intent_ns=\(Int(report.intentNanoseconds.rounded())) uprobe_path_ns=\(Int(paths[paths.count / 2].rounded())) "
              + "user_ns_per_event=\(Int(report.userNanosecondsPerEvent.rounded())) ns_per_hit=\(Int(report.nanosecondsPerHit.rounded())) "
              + (report.exact ? "ok" : "failed"))
        for problem in report.cases.flatMap(\.problems) { print("VPIO-AGENT cost not exact: \(problem)") }
    }
}
