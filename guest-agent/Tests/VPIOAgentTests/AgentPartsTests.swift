import CLibBPF
import CVPIOAgentShim
import Glibc
import Testing
import VPIOProtocol
@testable import VPIOAgentCore

/// The toolchain's clang (beside `swift`), which compiles the BPF program.
let toolchainClang: String? = {
    for candidate in ["/opt/swift/usr/bin/clang", "/usr/share/swift/usr/bin/clang", "/usr/bin/clang"] where access(candidate, X_OK) == 0 {
        return candidate
    }
    return nil
}()

@Suite struct BPFObjectTests {
    /// Compiles guest-agent/bpf/vpio_agent.bpf.c as provisioning does and opens it with libbpf (no load:
    /// the host kernel need not allow kprobes).
    @Test(.enabled(if: toolchainClang != nil, "needs the Swift toolchain's clang"))
    func compilesAndHasTheExpectedMaps() throws {
        let output = try Self.compile()
        defer { unlink(output) }
        let object = try AgentBPFObject(path: output)
        defer { object.close() }
        let ring = try #require(object.mapShape("ring"))
        #expect(ring.valueSize == SharedRing.abiBytes && ring.valueSize == 5 * 4096)
        #expect(ring.maxEntries == 1)
        #expect(ring.flags & UInt32(BPF_F_MMAPABLE) != 0)
        let sites = try #require(object.mapShape("sites"))
        #expect(sites.valueSize == MemoryLayout<vpio_site>.size && sites.maxEntries == Int(VPIO_AGENT_MAX_SITES))
        let shadow = try #require(object.mapShape("shadow"))
        #expect(shadow.valueSize == MemoryLayout<vpio_shadow>.size)
        let rtl8139 = try #require(object.mapShape("rtl8139"))
        #expect(rtl8139.valueSize == MemoryLayout<vpio_rtl8139_shadow>.size)
        let stats = try #require(object.mapShape("stats"))
        #expect(stats.valueSize == MemoryLayout<vpio_stats>.size)
        #expect(stats.flags & UInt32(BPF_F_MMAPABLE) != 0, "the agent reads its counters without a lookup syscall")
        let events = try #require(object.mapShape("events"))
        #expect(events.maxEntries == Int(VPIO_AGENT_EVENTS_BYTES))
        // The rodata the agent sets before load exists with the right size.
        try object.configure(bar0Base: 0xc040, device: .rtl8139)
    }

    /// The kernel's verifier takes the program for either device: the configured `device` is a
    /// constant it prunes by, so each device's path is verified on its own.
    @Test(.enabled(if: geteuid() == 0, "needs root (BPF)"), arguments: [AgentDevice.ne2000, .rtl8139])
    func theKernelLoadsTheProgram(for device: AgentDevice) throws {
        let output = try Self.compile()
        defer { unlink(output) }
        let object = try AgentBPFObject(path: output)
        defer { object.close() }
        try object.configure(bar0Base: 0xc000, device: device)
        vpio_libbpf_set_verbose(1)
        defer { vpio_libbpf_set_verbose(0) }
        try object.load()
    }

    /// guest-agent/bpf/vpio_agent.bpf.c compiled as provisioning does (warnings are errors); the path of
    /// the object, which the caller removes.
    static func compile() throws -> String {
        let output = "/tmp/vpio-agent-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).bpf.o"
        let argv = [toolchainClang!, "-target", "bpf", "-O2", "-g", "-D__TARGET_ARCH_x86", "-Wall", "-Werror",
                    "-I/usr/include/x86_64-linux-gnu", "-I", repositoryRoot + "/protocol/include",
                    "-I", repositoryRoot + "/guest-agent/bpf", "-c", repositoryRoot + "/guest-agent/bpf/vpio_agent.bpf.c", "-o", output]
        try #require(try run(argv) == 0, "clang failed on vpio_agent.bpf.c")
        return output
    }

    /// ProgramCounters reads what the kernel holds in a real mappable array map (the host kernel has
    /// BPF), written here with the syscall, and refuses a map of another value size or one the kernel will not map.
    @Test(.enabled(if: geteuid() == 0, "needs root (BPF maps)"))
    func programCountersReadTheMappedMap() throws {
        func create(flags: UInt32) -> Int32 {
            var options = bpf_map_create_opts()
            options.sz = MemoryLayout<bpf_map_create_opts>.size
            options.map_flags = flags
            return bpf_map_create(BPF_MAP_TYPE_ARRAY, "vpio_test", 4, UInt32(MemoryLayout<vpio_stats>.size), 1, &options)
        }
        let fd = create(flags: UInt32(BPF_F_MMAPABLE))
        try #require(fd >= 0, "bpf_map_create: errno \(errno)")
        defer { close(fd) }
        let counters = try ProgramCounters(mapFD: fd, valueSize: MemoryLayout<vpio_stats>.size)
        #expect(counters.read().hits == 0)
        var key: UInt32 = 0
        var value = vpio_stats(hits: 7, events_lost: 3, unknown_sites: 1, intents: 1 << 40, foreign: 5, unmodelled: 2)
        try #require(bpf_map_update_elem(fd, &key, &value, UInt64(BPF_ANY)) == 0)
        let read = counters.read()
        #expect(read.hits == 7 && read.events_lost == 3 && read.unknown_sites == 1 && read.intents == 1 << 40)
        #expect(read.foreign == 5 && read.unmodelled == 2)
        #expect(throws: AgentError.self) { try ProgramCounters(mapFD: fd, valueSize: 16) }
        let plain = create(flags: 0)
        defer { close(plain) }
        try #require(plain >= 0)
        #expect(throws: AgentError.self) { try ProgramCounters(mapFD: plain, valueSize: MemoryLayout<vpio_stats>.size) }
    }

    @Test func eventLayout() {
        #expect(MemoryLayout<vpio_event>.size == 40)
        #expect(MemoryLayout<vpio_site>.size == 8)
        #expect(MemoryLayout<vpio_ring>.size == SharedRing.abiBytes)
        #expect(MemoryLayout<vpio_record>.size == Int(VPIO_RECORD_SIZE))
    }
}

@Suite struct PagemapTests {
    @Test func presentEntry() {
        let entry = PagemapEntry(raw: 1 << 63 | 0x2b35)
        #expect(entry.present && !entry.swapped)
        #expect(entry.pfn == 0x2b35)
        #expect(entry.physicalAddress == 0x2b35000)
    }

    @Test func flagsAboveThePFNAreIgnored() {
        // bit 55 soft-dirty, bit 56 exclusively mapped, bit 61 file page: not part of the PFN.
        let entry = PagemapEntry(raw: 1 << 63 | 1 << 61 | 1 << 56 | 1 << 55 | 0x7f_ffff_ffff_ffff)
        #expect(entry.pfn == (1 << 55) - 1)
    }

    @Test func absentSwappedOrHidden() {
        #expect(PagemapEntry(raw: 0x1234).physicalAddress == nil)          // not present
        #expect(PagemapEntry(raw: 1 << 63 | 1 << 62 | 0x1234).physicalAddress == nil) // swapped
        #expect(PagemapEntry(raw: 1 << 63).physicalAddress == nil)         // PFN hidden (not root)
    }

    @Test(.enabled(if: geteuid() == 0, "pagemap shows physical frames to root only"))
    func ownPageResolvesAsRoot() throws {
        let page = UnsafeMutableRawPointer.allocate(byteCount: 8192, alignment: 4096)
        defer { page.deallocate() }
        page.storeBytes(of: 1, as: UInt8.self)
        (page + 4096).storeBytes(of: 1, as: UInt8.self)
        let addresses = try VPIOPagemap.physicalAddresses(ofVirtual: UInt(bitPattern: page), length: 8192)
        #expect(addresses.count == 2)
        #expect(addresses.allSatisfy { $0 % 4096 == 0 && $0 != 0 })
    }
}

@Suite struct CapabilityWalkTests {
    /// A config space with: status.CAP, 0x34 → 0x50 (MSI 0x05) → 0x40 (VPIO 0x09, length 88) → 0x98 (vendor 0x09, length 8) → end.
    func config() -> [UInt8] {
        var c = [UInt8](repeating: 0, count: 256)
        c[0] = 0xec; c[1] = 0x10; c[2] = 0x29; c[3] = 0x80
        c[0x06] = 0x10
        c[0x34] = 0x50
        c[0x50] = 0x05; c[0x51] = 0x40
        c[0x40] = 0x09; c[0x41] = 0x98; c[0x42] = 88; c[0x43] = 1
        c[0x98] = 0x09; c[0x99] = 0x00; c[0x9a] = 8
        return c
    }

    @Test func findsTheVPIOCapability() {
        #expect(PCICapabilities.offsets(of: 0x09, in: config()) == [0x40, 0x98])
        #expect(PCICapabilities.vpioCapability(in: config()) == 0x40)
        #expect(0x40 == Int(VPIO_CAP_OFFSET))
    }

    @Test func absentWithoutTheListBitOrCapability() {
        var c = config()
        c[0x06] = 0
        #expect(PCICapabilities.vpioCapability(in: c) == nil)
        c = config()
        c[0x42] = 8 // a vendor capability that is not VPIO's
        #expect(PCICapabilities.vpioCapability(in: c) == nil)
        c = [UInt8](repeating: 0, count: 256)
        c[0x06] = 0x10
        #expect(PCICapabilities.vpioCapability(in: c) == nil)
    }

    @Test func loopsAndBadPointersEnd() {
        var c = config()
        c[0x41] = 0x50 // 0x50 → 0x40 → 0x50 …
        #expect(PCICapabilities.offsets(of: 0x05, in: c) == [0x50])
        c = config()
        c[0x34] = 0x20 // into the header
        #expect(PCICapabilities.offsets(of: 0x09, in: c).isEmpty)
    }

    @Test func layoutMatchesTheHeader() {
        #expect(MemoryLayout<vpio_capability>.size == VPIOCapability.length)
        #expect(MemoryLayout<vpio_capability>.offset(of: \.status) == VPIOCapability.Field.status)
        #expect(MemoryLayout<vpio_capability>.offset(of: \.command) == VPIOCapability.Field.command)
        #expect(MemoryLayout<vpio_capability>.offset(of: \.page_count) == VPIOCapability.Field.pageCount)
        #expect(MemoryLayout<vpio_capability>.offset(of: \.pages) == VPIOCapability.Field.pages)
        #expect(MemoryLayout<vpio_capability>.offset(of: \.violations) == VPIOCapability.Field.violations)
        #expect(MemoryLayout<vpio_capability>.offset(of: \.last_error) == VPIOCapability.Field.lastError)
    }

    @Test func resourceFile() {
        let text = "0x000000000000c040 0x000000000000c05f 0x0000000000040101\n0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
        let bar = PCIDevice.ioBAR0(fromResource: text)
        #expect(bar?.base == 0xc040 && bar?.size == 0x20)
        // A memory BAR0 is not the NE2000's port range.
        #expect(PCIDevice.ioBAR0(fromResource: "0x00000000fe000000 0x00000000fe000fff 0x0000000000040200\n") == nil)
    }
}

@Suite struct EventCounterTests {
    func event(_ kind: Int32, port: UInt16, value: UInt64 = 0, count: UInt64 = 1, index: UInt64) -> vpio_event {
        var e = vpio_event()
        e.kind = UInt8(kind); e.port = port; e.value = value; e.count = count; e.access_index = index
        e.width = kind == VPIO_SITE_OUT || kind == VPIO_SITE_IN ? 1 : 4
        return e
    }

    @Test func countsPerPortAndDirection() {
        let c = EventCounter(bar0Base: 0xc040)
        c.consume(event(VPIO_SITE_OUT, port: 0xc040, value: 0x22, index: 0))   // CR: start, no DMA
        c.consume(event(VPIO_SITE_OUT, port: 0xc040, value: 0x0a, index: 1))   // CR: remote read
        c.consume(event(VPIO_SITE_INS, port: 0xc050, count: 300, index: 2))    // rep insl
        c.consume(event(VPIO_SITE_IN, port: 0xc047, index: 302))
        c.consume(event(VPIO_SITE_POST, port: 0xc047, value: 0x40, count: 0, index: 303))
        c.consume(event(VPIO_SITE_OUT, port: 0xc040, value: 0x26, index: 303)) // CR: transmit
        #expect(c.accesses == 304)
        #expect(c.writes[0] == 3 && c.reads[0x10] == 300 && c.reads[7] == 1)
        #expect(c.dmaStarts == 2)
        #expect(c.modelDMAStarts == 2)
        #expect(!c.reusable) // the transmit is in flight until ISR.PTX is acknowledged
        #expect(c.gaps == 0)
        #expect(c.byPort == "w00:3,r07:1,r10:300")
        c.consume(event(VPIO_SITE_OUT, port: 0xc040, value: 0x22, index: 400))
        #expect(c.gaps == 1)
    }
}

@Suite struct CleanupsTests {
    @Test func runsNewestFirstAndEachOnce() {
        let cleanups = Cleanups()
        var ran: [String] = []
        cleanups.add { ran.append("close object") }
        cleanups.add { ran.append("detach") }
        cleanups.add { ran.append("unregister") }
        cleanups.runAll()
        #expect(ran == ["unregister", "detach", "close object"])
        cleanups.runAll()
        #expect(ran.count == 3)
    }
}

/// Runs argv, returns its exit status.
func run(_ argv: [String]) throws -> Int32 {
    var pid: pid_t = 0
    var cArgs = argv.map { strdup($0) } + [nil]
    defer { for p in cArgs { free(p) } }
    let rc = posix_spawn(&pid, argv[0], nil, nil, &cArgs, environ)
    guard rc == 0 else { return -1 }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return (status >> 8) & 0xff
}
