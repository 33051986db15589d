// libFuzzer target: the host's reader of the agent's shared-memory ring (AgentChannel, driven through
// AgentMonitor at DMA starts as vpio-host drives it) on guest memory the fuzzer writes: the header
// with any head and counters, slots with any sequence word and body, pages that stop being readable,
// registrations of any pages (a new agent pid is a new ring generation), unregistrations.
//
// Sequence words are mostly chosen near the reader's position (the head ± a little, claim numbers
// near 2^64), since that is where the reader's decisions are; the rest of a slot is free bytes.
//
// Invariants: no trap; every look is bounded work — at most one ring's worth of slots read (read +
// malformed ≤ capacity), at most one ring's worth counted as lost, and a bounded number of memory reads; the records one look
// returns are in claim order; registration succeeds only for a compatible header in readable,
// aligned pages. Built by fuzz/run against the package's modules.
import AgentLink
import DeviceBus
import PCIFunction
import VFIOUserServer
import VPIOProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let host = RingHost(base: input.u64())
    while !input.isEmpty { host.op(&input) }
    return 0
}

/// Guest RAM holding the ring (header page + record pages) and two spare pages at `base`, readable
/// page by page; counts reads so a look's work can be bounded.
private final class GuestRAM: GuestMemory {
    static let pages = VPIORing.pages + 2
    let base: UInt64
    var bytes = [UInt8](repeating: 0, count: pages * VPIORing.pageSize)
    var unreadable = Set<Int>()
    var reads = 0

    init(base: UInt64) { self.base = base }

    func read(guestAddress: UInt64, count: Int) -> [UInt8]? {
        reads += 1
        let (offset, below) = guestAddress.subtractingReportingOverflow(base)
        guard !below, count >= 0, count <= bytes.count, offset <= UInt64(bytes.count - count) else { return nil }
        let at = Int(offset)
        let pages = at / VPIORing.pageSize...(at + max(count, 1) - 1) / VPIORing.pageSize
        guard unreadable.isDisjoint(with: pages) else { return nil }
        return Array(bytes[at..<at + count])
    }

    func write(_ data: [UInt8], at offset: Int) {
        let end = min(bytes.count, offset + data.count)
        guard offset < end else { return }
        bytes.replaceSubrange(offset..<end, with: data.prefix(end - offset))
    }
}

/// A BAR the endpoint needs for the capability; the ring is what is fuzzed here.
private final class IdleDevice: BusDevice {
    let regionSizes: [UInt32: UInt32] = [0: 32]
    func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32 { 0 }
    func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) {}
    func reset() {}
}

private final class RingHost {
    let memory: GuestRAM
    let endpoint = PCIEndpoint(identity: .rtl8029, device: IdleDevice(), interruptLine: InterruptLine(), intx: INTxRouter())
    let monitor: AgentMonitor
    /// Where the reader is, as far as the input can tell: sequence words are chosen around it.
    private var position: UInt64 = 0

    var channel: AgentChannel { monitor.channel }

    /// Page-aligned base, anywhere in the 64-bit space (near its top too, where address sums could wrap).
    init(base: UInt64) {
        let aligned = base & ~UInt64(VPIORing.pageSize - 1)
        memory = GuestRAM(base: min(aligned, UInt64.max - UInt64(GuestRAM.pages * VPIORing.pageSize) + 1))
        let memory = memory
        monitor = AgentMonitor(capability: AgentCapability(endpoint: endpoint, channel: AgentChannel())) { memory }
        let capability = monitor.capability
        endpoint.configWritten = { offset, count in capability.configWritten(offset: offset, count: count, memory: memory) }
        memory.write(RingHeader().encode(), at: 0)
    }

    func op(_ input: inout FuzzInput) {
        switch input.u8() % 10 {
        case 0, 1, 2: writeSlot(&input)
        case 3: writeHeader(&input)
        case 4: register(&input)
        case 5: channel.unregister()
        case 6: toggleReadable(&input)
        case 7: memory.write(input.take(Int(input.u8())), at: Int(input.u16()) % memory.bytes.count)
        case 8: look()
        default: dmaStart(&input)
        }
    }

    /// A sequence word where the reader's decisions are: the next claim, a little either side, a lap
    /// ahead, the wrap at 2^64, or anything.
    private func sequence(_ input: inout FuzzInput) -> UInt64 {
        let delta = UInt64(bitPattern: Int64(Int8(bitPattern: input.u8())))
        switch input.u8() % 6 {
        case 0, 1: return position &+ 1 &+ delta
        case 2: return position &+ UInt64(VPIORing.capacity) &+ delta
        case 3: return delta
        case 4: return UInt64.max &+ delta
        default: return input.u64()
        }
    }

    /// One slot: a sequence word, a record type, then free bytes (or a well-formed intent).
    private func writeSlot(_ input: inout FuzzInput) {
        let slot = Int(input.u8())
        var record = le(sequence(&input)) + le(UInt16(input.u8() % 6))
        if input.bool() {
            let kind = input.pick(IntentKind.allCases)
            record = RingRecord(sequence: u64(record), body: .dmaIntent(kind: kind, command: 0x0A, start: UInt32(input.u16()),
                                count: UInt32(input.u16()), intentIndex: UInt64(input.u8()), accessIndex: 0)).encode()
        }
        record += input.take(VPIORing.recordSize - record.count)
        memory.write(record, at: VPIORing.recordOffset(slot: slot))
    }

    /// The header: compatible or not, with the head and counters the reader and monitor trust least.
    private func writeHeader(_ input: inout FuzzInput) {
        let compatible = input.u8() % 8 != 0
        let header = RingHeader(magic: compatible ? VPIORing.magic : input.u32(),
                                capacity: compatible ? UInt32(VPIORing.capacity) : input.u32(),
                                agentPID: UInt32(input.u8() % 4), head: sequence(&input), accessesSeen: input.u64(),
                                intentsWritten: input.u64(), unseenSites: UInt64(input.u8() % 3))
        memory.write(header.encode(), at: 0)
    }

    /// A registration through the capability, as the agent writes it: usually the ring's own pages.
    private func register(_ input: inout FuzzInput) {
        let count = input.u8() % 8 == 0 ? UInt32(input.u8() % 10) : UInt32(VPIORing.pages)
        var pages = (0..<VPIOCapability.maxPages).map { memory.base &+ UInt64($0 * VPIORing.pageSize) }
        for i in pages.indices where input.u8() % 8 == 0 {
            pages[i] = input.bool() ? memory.base &+ UInt64(input.u16()) : input.u64()
        }
        let data = le(UInt32(1)) + le(count) + pages.flatMap(le)
        let at = VPIOCapability.offset + VPIOCapability.Field.command
        _ = try? endpoint.write(region: PCIEndpoint.configRegion, offset: UInt64(at), data: data)
        if channel.isRegistered, channel.pages == Array(pages.prefix(Int(count))), let header = channel.headerAtRegistration {
            precondition(header.isCompatible, "adopted a ring with an incompatible header")
            position = header.head
        }
    }

    private func toggleReadable(_ input: inout FuzzInput) {
        let page = Int(input.u8()) % GuestRAM.pages
        if memory.unreadable.remove(page) == nil { memory.unreadable.insert(page) }
    }

    /// One look at the ring, bounded: at most one ring's worth read and one lost, memory reads bounded.
    private func look() {
        let before = channel.counters
        memory.reads = 0
        let records = channel.poll(memory: memory)
        let after = channel.counters
        let claims = (after.recordsRead - before.recordsRead) + (after.recordsMalformed - before.recordsMalformed)
        precondition(claims <= VPIORing.capacity, "one look read \(claims) slots")
        let lost = after.recordsLost - before.recordsLost
        precondition(lost <= VPIORing.capacity, "one look counted \(lost) claims lost")
        precondition(memory.reads <= 3 * VPIORing.capacity + 2, "one look read guest memory \(memory.reads) times")
        precondition(records.count == after.recordsRead - before.recordsRead)
        for (a, b) in zip(records, records.dropFirst()) {
            precondition(b.sequence.isAhead(of: a.sequence), "records out of claim order: \(a.sequence) then \(b.sequence)")
        }
        if let last = records.last { position = last.sequence }
    }

    /// A DMA start as the gate reports it: the monitor reads the ring, matches the intent, compares counts.
    private func dmaStart(_ input: inout FuzzInput) {
        for _ in 0..<Int(input.u8() % 8) {
            monitor.count(BusAccess(direction: .write, region: 0, offset: 0, width: .byte, value: 0))
        }
        let kind = input.pick(IntentKind.allCases)
        memory.reads = 0
        _ = monitor.verify(kind: kind, start: input.bool() ? UInt32(input.u16()) : nil)
        precondition(memory.reads <= 3 * VPIORing.capacity + 4, "one DMA start read guest memory \(memory.reads) times")
        _ = monitor.inconsistency()
    }
}

private func u64(_ bytes: [UInt8]) -> UInt64 {
    (0..<8).reduce(0) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) }
}

private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}
