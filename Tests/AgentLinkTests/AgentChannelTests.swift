import AgentLink
import DeviceBus
import PCIFunction
import VFIOUserServer
import Testing
import VPIOProtocol

/// Guest RAM in a dictionary of pages, with a producer that writes the ring as the agent would.
final class FakeGuest: GuestMemory {
    var pages: [UInt64: [UInt8]] = [:]
    let ringPages: [UInt64]
    /// The ring header as the agent publishes it: every change is written to page 0 at once.
    var header: RingHeader {
        didSet { write(header.encode(), ringOffset: 0) }
    }

    /// The ring's pages at scattered, non-contiguous guest addresses (as a BPF map's pages are).
    init(base: UInt64 = 0x10_0000, header: RingHeader = RingHeader()) {
        ringPages = (0..<VPIORing.pages).map { base + UInt64($0) * 0x3000 }
        self.header = header
        for page in ringPages { pages[page] = [UInt8](repeating: 0, count: VPIORing.pageSize) }
        pages[0x20_0000] = [UInt8](repeating: 0, count: VPIORing.pageSize)  // other RAM
        write(header.encode(), ringOffset: 0)
    }

    func read(guestAddress: UInt64, count: Int) -> [UInt8]? {
        let page = guestAddress & ~0xFFF, offset = Int(guestAddress & 0xFFF)
        guard let bytes = pages[page], offset + count <= VPIORing.pageSize else { return nil }
        return Array(bytes[offset..<offset + count])
    }

    func write(_ bytes: [UInt8], ringOffset: Int) {
        let page = ringPages[ringOffset / VPIORing.pageSize], offset = ringOffset % VPIORing.pageSize
        pages[page]!.replaceSubrange(offset..<offset + bytes.count, with: bytes)
    }

    /// Claims a slot and commits `body` as the agent's producers do (seq = claim + 1, modulo 2^64).
    @discardableResult
    func produce(_ body: RingRecord.Body) -> UInt64 {
        let n = header.head
        let slot = Int(n % UInt64(VPIORing.capacity))
        write(RingRecord(sequence: n &+ 1, body: body).encode(), ringOffset: VPIORing.recordOffset(slot: slot))
        header.head = n &+ 1
        return n
    }

    /// Claims a slot without committing it: a producer interrupted between its claim and its commit.
    func claim() -> UInt64 {
        let n = header.head
        header.head = n &+ 1
        return n
    }

    /// Commits `body` at claim `n`, claimed earlier.
    func commit(_ body: RingRecord.Body, at n: UInt64) {
        let slot = Int(n % UInt64(VPIORing.capacity))
        write(RingRecord(sequence: n &+ 1, body: body).encode(), ringOffset: VPIORing.recordOffset(slot: slot))
    }

    func intent(_ index: UInt64, _ kind: IntentKind = .remoteRead) -> RingRecord.Body {
        .dmaIntent(kind: kind, command: 0x0A, start: 0x4C00, count: 4, intentIndex: index, accessIndex: 0)
    }
}

@Suite struct AgentChannelTests {
    @Test func aRejectedRegistrationLeavesTheWorkingRingInPlace() {
        let guest = FakeGuest()
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        guest.produce(guest.intent(0))
        #expect(channel.register(pages: [0xFFFF_F000], memory: guest) == .pageCount)
        #expect(channel.register(pages: Array(repeating: 0xFFFF_F000, count: VPIORing.pages), memory: guest) == .pageAddress)
        #expect(channel.isRegistered && channel.pages == guest.ringPages)
        #expect(channel.poll(memory: guest).count == 1)
    }

    @Test func registrationValidatesPagesAndHeader() {
        let guest = FakeGuest()
        let channel = AgentChannel()
        #expect(channel.register(pages: Array(guest.ringPages.prefix(3)), memory: guest) == .pageCount)
        var unaligned = guest.ringPages
        unaligned[2] += 8
        #expect(channel.register(pages: unaligned, memory: guest) == .pageAddress)
        var outside = guest.ringPages
        outside[4] = 0xFFFF_F000
        #expect(channel.register(pages: outside, memory: guest) == .pageAddress)
        let bad = FakeGuest(header: RingHeader(version: 9))
        #expect(channel.register(pages: bad.ringPages, memory: bad) == .badHeader)
        #expect(!channel.isRegistered)
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        #expect(channel.isRegistered && channel.counters.rejections == 4)
    }

    @Test func readsRecordsInOrderAcrossPagesAndWraps() {
        let guest = FakeGuest()
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        var seen: [UInt64] = []
        for round in 0..<3 {
            for i in 0..<200 { guest.produce(guest.intent(UInt64(round * 200 + i))) }
            for record in channel.poll(memory: guest) {
                if case let .dmaIntent(_, _, _, _, index, _) = record.body { seen.append(index) }
            }
        }
        #expect(seen == Array(0..<600))
        #expect(channel.counters.recordsLost == 0 && channel.counters.dmaIntents == 600)
        #expect(channel.poll(memory: guest).isEmpty)
    }

    @Test func recordsWrittenBeforeRegistrationAreSkipped() {
        let guest = FakeGuest()
        for i in 0..<5 { guest.produce(guest.intent(UInt64(i))) }
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        #expect(channel.poll(memory: guest).isEmpty)
        guest.produce(guest.intent(5))
        #expect(channel.poll(memory: guest).count == 1)
    }

    @Test func anOvertakenReaderCountsTheLossAndResyncs() {
        let guest = FakeGuest()
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        for i in 0..<(VPIORing.capacity + 10) { guest.produce(guest.intent(UInt64(i))) }
        let records = channel.poll(memory: guest) + channel.poll(memory: guest)
        #expect(channel.counters.recordsLost == 10)
        #expect(records.count == VPIORing.capacity)
    }

    /// The user-space agent claims a slot for a heartbeat, an interrupt comes before it commits, and
    /// the BPF probe writes an intent behind it in the handler: the host must read the intent then,
    /// with the vCPU stalled in the access it announces, and the heartbeat once it is committed.
    @Test func aSlotStillBeingFilledDoesNotHideLaterRecords() {
        let guest = FakeGuest()
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        let unfinished = guest.claim()
        guest.produce(guest.intent(0))
        #expect(channel.poll(memory: guest).map(\.body) == [guest.intent(0)])
        #expect(channel.poll(memory: guest).isEmpty)
        guest.produce(guest.intent(1))
        #expect(channel.poll(memory: guest).map(\.body) == [guest.intent(1)])
        guest.commit(.heartbeat(uptimeNanoseconds: 5, accesses: 9), at: unfinished)
        guest.produce(guest.intent(2))
        #expect(channel.poll(memory: guest).map(\.body) == [.heartbeat(uptimeNanoseconds: 5, accesses: 9), guest.intent(2)])
        #expect(channel.counters.recordsRead == 4 && channel.counters.recordsLost == 0)
        // Every claim accounted for: the reader is at the head again, nothing read twice.
        for i in 3..<203 { guest.produce(guest.intent(UInt64(i))) }
        #expect((channel.poll(memory: guest) + channel.poll(memory: guest)).count == 200)
        #expect(channel.counters.recordsLost == 0 && channel.counters.recordsRead == 204)
    }

    /// A slot claimed and never committed is lost once the producers lap it, counted once; the
    /// records read past it are not counted again.
    @Test func anAbandonedSlotIsLostOnceWhenLapped() {
        let guest = FakeGuest()
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        _ = guest.claim()
        for i in 0..<10 { guest.produce(guest.intent(UInt64(i))) }
        #expect(channel.poll(memory: guest).count == 10)
        for i in 10..<(VPIORing.capacity + 20) { guest.produce(guest.intent(UInt64(i))) }
        let records = channel.poll(memory: guest) + channel.poll(memory: guest)
        // Claims 0…276 made; the ring holds 21…276. Lost: the abandoned claim 0 and claims 11…20,
        // overwritten before the reader came back; 1…10 were read already.
        #expect(channel.counters.recordsLost == 11)
        #expect(records.count == VPIORing.capacity)
        #expect(channel.poll(memory: guest).isEmpty)
    }

    /// The second CI-like failure (a real guest, the agent publishing every millisecond): 283 records
    /// between registration and the first DMA start, the newest the intent. The reader, lapped, must
    /// count the 27 it cannot read as lost and still read the whole ring, the intent included.
    @Test func afterALapTheWholeRingIsReadNewestIntentIncluded() {
        let guest = FakeGuest()
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        for i in 0..<282 { guest.produce(.heartbeat(uptimeNanoseconds: UInt64(i), accesses: 0)) }
        guest.produce(guest.intent(0))
        let records = channel.poll(memory: guest)
        #expect(records.count == VPIORing.capacity && records.last?.body == guest.intent(0))
        #expect(channel.counters.recordsLost == 27 && channel.counters.dmaIntents == 1)
    }

    /// A head claimed far ahead over slots never written: the reader looks at most one ring past its
    /// position and reads nothing.
    @Test func unwrittenSlotsUnderAFarHeadAreNotScannedBeyondOneRing() {
        let guest = FakeGuest()
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        guest.header.head = 1 << 62
        #expect(channel.poll(memory: guest).isEmpty)
        #expect(channel.counters.recordsRead == 0 && channel.counters.recordsLost == 0)
    }

    @Test func garbageInTheRingIsCountedNotTrusted() {
        let guest = FakeGuest()
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        // Slot 0 claims sequence 1 but its type is nonsense; slot 1 is random bytes with a huge sequence.
        var junk = RingRecord(sequence: 1, body: .heartbeat(uptimeNanoseconds: 0, accesses: 0)).encode()
        junk[8] = 0xEE
        guest.write(junk, ringOffset: VPIORing.recordOffset(slot: 0))
        guest.write((0..<64).map { _ in UInt8.random(in: 0...255) } + [], ringOffset: VPIORing.recordOffset(slot: 1))
        var sequence = [UInt8](repeating: 0xFF, count: 8)
        sequence[7] = 0x7F
        guest.write(sequence, ringOffset: VPIORing.recordOffset(slot: 1))
        _ = channel.poll(memory: guest)
        #expect(channel.counters.recordsMalformed == 1)
        #expect(channel.counters.recordsLost > 0)
        #expect(channel.counters.recordsRead == 0)
    }

    @Test func unmappedPagesStopTheReaderWithoutCrashing() {
        let guest = FakeGuest()
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        guest.pages[guest.ringPages[1]] = nil
        #expect(channel.poll(memory: guest).isEmpty)
        #expect(channel.counters.unreadable == 1)
    }

    @Test func onlyAnotherRingIsANewGeneration() {
        let guest = FakeGuest(header: RingHeader(agentPID: 100))
        let channel = AgentChannel()
        #expect(channel.ringGeneration == 0)
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        #expect(channel.ringGeneration == 1)
        // The same ring again, also after an unregistration, and a rejected ring: no new generation.
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        channel.unregister()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        #expect(channel.register(pages: [0xFFFF_F000], memory: guest) == .pageCount)
        #expect(channel.ringGeneration == 1 && channel.counters.registrations == 3)
        // The same pages announced by another agent process: a new ring.
        guest.header.agentPID = 101
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        #expect(channel.ringGeneration == 2)
        // Other pages: a new ring; and going back to the previous one is new again.
        let other = FakeGuest(base: 0x40_0000, header: RingHeader(agentPID: 101))
        for (page, bytes) in other.pages { guest.pages[page] = bytes }
        #expect(channel.register(pages: other.ringPages, memory: guest) == .none)
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        #expect(channel.ringGeneration == 4)
    }

    @Test func stateReportsAreKept() {
        let guest = FakeGuest()
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        guest.produce(.state(accesses: 10, dmaIntents: 2, reusable: true, unsure: false, eventsLost: 0))
        guest.produce(.heartbeat(uptimeNanoseconds: 1, accesses: 10))
        _ = channel.poll(memory: guest)
        #expect(channel.lastState == AgentChannel.AgentState(accesses: 10, dmaIntents: 2, reusable: true, unsure: false, eventsLost: 0))
        #expect(channel.counters.heartbeats == 1)
    }
}

@Suite struct IntentMatcherTests {
    func intent(_ index: UInt64, _ kind: IntentKind, start: UInt32 = 0x4C00, count: UInt32 = 4) -> RingRecord {
        RingRecord(sequence: index + 1, body: .dmaIntent(kind: kind, command: 0, start: start, count: count, intentIndex: index, accessIndex: 0))
    }

    @Test func matchesInOrderAndCountsMissesAndMismatches() {
        let m = IntentMatcher()
        m.reset(base: 3)
        m.ingest([intent(2, .remoteRead), intent(3, .remoteRead), intent(4, .transmit)])
        #expect(m.dmaStarted(kind: .remoteRead, start: 0x4C00, count: 4) == .hit)
        #expect(m.dmaStarted(kind: .remoteWrite) == .mismatch(expected: .remoteWrite, found: .transmit, start: 0x4C00, count: 4))
        #expect(m.dmaStarted(kind: .transmit) == .miss(expected: 5, next: nil))
        m.ingest([intent(5, .transmit, start: 0x4000, count: 60)])
        #expect(m.dmaStarted(kind: .transmit, start: 0x4000, count: 64) == .mismatch(expected: .transmit, found: .transmit, start: 0x4000, count: 60))
        #expect(m.counters == IntentMatcher.Counters(dmaStarts: 4, hits: 1, misses: 1, mismatches: 2, unmatched: 1))
    }
}

@Suite struct AgentCapabilityTests {
    func endpointWithCapability() -> (PCIEndpoint, AgentCapability) {
        let intx = INTxRouter()
        let line = InterruptLine { intx.lineChanged($0) }
        let endpoint = PCIEndpoint(identity: .rtl8029, device: NullDevice(), interruptLine: line, intx: intx)
        return (endpoint, AgentCapability(endpoint: endpoint, channel: AgentChannel()))
    }

    func write32(_ endpoint: PCIEndpoint, _ offset: Int, _ value: UInt32) throws {
        try endpoint.write(region: 7, offset: UInt64(offset), data: (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) })
    }

    func read32(_ endpoint: PCIEndpoint, _ offset: Int) throws -> UInt32 {
        try endpoint.read(region: 7, offset: UInt64(offset), count: 4).enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }

    @Test func guestRegistersThroughConfigSpace() throws {
        let guest = FakeGuest()
        let (endpoint, capability) = endpointWithCapability()
        endpoint.configWritten = { capability.configWritten(offset: $0, count: $1, memory: guest) }
        let base = VPIOCapability.offset
        #expect(try endpoint.read(region: 7, offset: 0x34, count: 1) == [UInt8(base)])
        #expect(try endpoint.read(region: 7, offset: UInt64(base), count: 4) == [0x09, 0x00, 92, 2])
        for (i, page) in guest.ringPages.enumerated() {
            try endpoint.write(region: 7, offset: UInt64(base + 16 + 8 * i),
                               data: (0..<8).map { UInt8(truncatingIfNeeded: page >> (8 * UInt64($0))) })
        }
        try write32(endpoint, base + 12, UInt32(guest.ringPages.count))
        try write32(endpoint, base + 8, 1)
        #expect(try read32(endpoint, base + 4) & 1 == 1)
        #expect(try read32(endpoint, base + 8) == 0)
        #expect(try read32(endpoint, base + 84) == 0)
        #expect(capability.channel.isRegistered)
        // Read-only words ignore the guest.
        try write32(endpoint, base + 4, 0xFFFF_FFFF)
        try write32(endpoint, base + 80, 0xFFFF_FFFF)
        #expect(try read32(endpoint, base + 4) == 1)
        #expect(try read32(endpoint, base + 80) == 0)
        try write32(endpoint, base + 8, 2)
        let status = try read32(endpoint, base + 4)
        #expect(!capability.channel.isRegistered && status == 0)
    }

    @Test func bogusRegistrationsAreRejectedWithAReason() throws {
        let guest = FakeGuest()
        let (endpoint, capability) = endpointWithCapability()
        endpoint.configWritten = { capability.configWritten(offset: $0, count: $1, memory: guest) }
        let base = VPIOCapability.offset
        try write32(endpoint, base + 12, 0xFFFF_FFFF)
        try write32(endpoint, base + 8, 1)
        #expect(try read32(endpoint, base + 4) == 2)
        #expect(try read32(endpoint, base + 84) == 1)
        try write32(endpoint, base + 12, UInt32(VPIORing.pages))  // pages all zero: outside the ring's RAM
        try write32(endpoint, base + 8, 1)
        #expect(try read32(endpoint, base + 84) == 2)
        endpoint.configWritten = { capability.configWritten(offset: $0, count: $1, memory: nil) }
        try write32(endpoint, base + 8, 1)
        #expect(try read32(endpoint, base + 84) == 2)
        #expect(capability.channel.counters.rejections == 3)
    }

    @Test func anomaliesAreCountedReadOnly() throws {
        let (endpoint, capability) = endpointWithCapability()
        let anomalies = VPIOCapability.offset + VPIOCapability.Field.anomalies
        #expect(try read32(endpoint, anomalies) == 0)
        capability.recordAnomaly()
        capability.recordAnomaly()
        try write32(endpoint, anomalies, 0)
        #expect(try read32(endpoint, anomalies) == 2)
        #expect(try read32(endpoint, VPIOCapability.offset + VPIOCapability.Field.violations) == 0)
    }

    /// The fallback bit is the enforcer's: a guest registering, being rejected or unregistering
    /// must not clear it (vpio-tamper saw fallback=0 after the host had fallen back).
    @Test func registerAndUnregisterKeepTheFallbackBit() throws {
        let guest = FakeGuest()
        let (endpoint, capability) = endpointWithCapability()
        endpoint.configWritten = { capability.configWritten(offset: $0, count: $1, memory: guest) }
        let base = VPIOCapability.offset
        capability.setEnforcedMode(1)
        capability.setFallback(true)
        for (i, page) in guest.ringPages.enumerated() {
            try endpoint.write(region: 7, offset: UInt64(base + 16 + 8 * i),
                               data: (0..<8).map { UInt8(truncatingIfNeeded: page >> (8 * UInt64($0))) })
        }
        try write32(endpoint, base + 12, UInt32(VPIORing.pages))
        try write32(endpoint, base + 8, 1)
        #expect(try read32(endpoint, base + 4) == 0x105)  // registered, fallback, mode 1
        try write32(endpoint, base + 8, 2)
        #expect(try read32(endpoint, base + 4) == 0x104)
        try write32(endpoint, base + 12, 0)
        try write32(endpoint, base + 8, 1)
        #expect(try read32(endpoint, base + 4) == 0x106)  // rejected (nothing registered), fallback
        capability.setFallback(false)
        #expect(try read32(endpoint, base + 4) == 0x102)
    }
}

final class NullDevice: BusDevice {
    let regionSizes: [UInt32: UInt32] = [0: 32]
    func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32 { 0 }
    func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) {}
    func reset() {}
}

/// A monitor on a capability served by an endpoint whose every BAR access it counts, and a guest
/// whose agent registers its ring through config space.
final class MonitorRig {
    let guest: FakeGuest
    let endpoint: PCIEndpoint
    let capability: AgentCapability
    let monitor: AgentMonitor

    init(header: RingHeader = RingHeader()) {
        let guest = FakeGuest(header: header)
        let (endpoint, capability) = AgentCapabilityTests().endpointWithCapability()
        let monitor = AgentMonitor(capability: capability) { guest }
        endpoint.configWritten = { capability.configWritten(offset: $0, count: $1, memory: guest) }
        endpoint.accessHook = { monitor.count($0); return $0.value }
        (self.guest, self.endpoint, self.capability, self.monitor) = (guest, endpoint, capability, monitor)
    }

    /// The agent's registration: page addresses, page count, then the command.
    func register(pages: [UInt64]? = nil) throws {
        let base = VPIOCapability.offset
        for (i, page) in (pages ?? guest.ringPages).enumerated() {
            try endpoint.write(region: 7, offset: UInt64(base + 16 + 8 * i), data: (0..<8).map { UInt8(truncatingIfNeeded: page >> (8 * UInt64($0))) })
        }
        try AgentCapabilityTests().write32(endpoint, base + 12, UInt32(VPIORing.pages))
        try AgentCapabilityTests().write32(endpoint, base + 8, 1)
    }

    /// One device access the host serves and the agent's probe counts.
    func access() throws {
        try endpoint.write(region: 0, offset: 7, data: [0xFF])
        guest.header.accessesSeen &+= 1
    }

    /// A remote read the agent announced: its intent, the access that starts it, the host's check.
    func announcedRemoteRead() throws -> IntentMatcher.Outcome? {
        guest.produce(guest.intent(guest.header.intentsWritten))
        guest.header.intentsWritten &+= 1
        try access()
        return monitor.verify(kind: .remoteRead, start: 0x4C00)
    }
}

@Suite struct AgentMonitorTests {
    /// The CI failure of 2026-12-01: the agent's heartbeat claimed a slot, the NIC's interrupt came
    /// before it committed, and the handler's DMA start found its intent behind the unfinished slot.
    /// Every DMA start from then on must verify, the heartbeat too once committed.
    @Test func intentsBehindAnUnfinishedAgentRecordVerify() throws {
        let rig = MonitorRig()
        try rig.register()
        #expect(try rig.announcedRemoteRead() == .hit)
        let heartbeat = rig.guest.claim()
        for _ in 0..<5 { #expect(try rig.announcedRemoteRead() == .hit) }
        rig.guest.commit(.heartbeat(uptimeNanoseconds: 1, accesses: 6), at: heartbeat)
        #expect(try rig.announcedRemoteRead() == .hit)
        #expect(rig.monitor.counters.intents == IntentMatcher.Counters(dmaStarts: 7, hits: 7))
        #expect(rig.capability.channel.counters.heartbeats == 1 && rig.capability.channel.counters.recordsLost == 0)
        #expect(rig.monitor.inconsistency() == nil)
    }

    @Test func checksIntentsAndAccessCountsAtEachDMAStart() throws {
        let rig = MonitorRig()
        let monitor = rig.monitor
        // Accesses before registration do not count.
        try rig.endpoint.write(region: 0, offset: 7, data: [0xFF])
        try rig.register()
        #expect(rig.capability.channel.isRegistered)

        // The agent saw 3 accesses (two register writes and the command), wrote its intent first.
        rig.guest.produce(rig.guest.intent(0))
        rig.guest.header.accessesSeen = 3
        rig.guest.header.intentsWritten = 1
        try rig.endpoint.write(region: 0, offset: 8, data: [0x00])
        try rig.endpoint.write(region: 0, offset: 9, data: [0x4C])
        try rig.endpoint.write(region: 0, offset: 0, data: [0x0A])  // remote read starts
        #expect(monitor.verify(kind: .remoteRead, start: 0x4C00) == .hit)
        #expect(monitor.counters.intents.hits == 1)
        #expect(monitor.counters.accessCountMismatches == 0)
        #expect(monitor.counters.hostAccessesSinceRegistration == 3)
        #expect(monitor.inconsistency() == nil)

        // A transmit with no intent in the ring, and an agent that missed an access.
        rig.guest.header.accessesSeen = 4
        try rig.endpoint.write(region: 0, offset: 4, data: [0x40])
        try rig.endpoint.write(region: 0, offset: 0, data: [0x26])
        #expect(monitor.verify(kind: .transmit, start: 0x4000) == .miss(expected: 1, next: nil))
        #expect(monitor.counters.intents.misses == 1)
        #expect(monitor.describeMiss(expected: 1, next: nil) == "no intent #1 (no later intent in the ring; agent wrote 1 "
                + "intents and saw 4 accesses since registration, host served 5; host read 1 records, lost 0, malformed 0, "
                + "unreadable 0)")
        #expect(monitor.counters.accessCountMismatches == 1)
        #expect(monitor.counters.firstMismatchAccesses == "0x0 w1 ×1, 0x4 w1 ×1", "the accesses since the previous DMA start")
        #expect(monitor.inconsistency() == "agent saw 4 accesses since registration, host served 5")
    }

    @Test func anHonestAgentIsConsistentThoughASiteWasRefusedFromTheStart() throws {
        let rig = MonitorRig(header: RingHeader(unseenSites: 1))
        #expect(rig.monitor.inconsistency() == nil)  // not registered
        try rig.register()
        #expect(rig.monitor.inconsistency() == nil)  // no DMA start checked yet
        rig.guest.produce(.state(accesses: 0, dmaIntents: 0, reusable: true, unsure: false, eventsLost: 7))
        for _ in 0..<3 {
            #expect(try rig.announcedRemoteRead() == .hit)
            #expect(rig.monitor.inconsistency() == nil)
        }
        rig.guest.produce(.state(accesses: 9, dmaIntents: 3, reusable: true, unsure: false, eventsLost: 7))
        #expect(try rig.announcedRemoteRead() == .hit)
        #expect(rig.monitor.inconsistency() == nil)
    }

    @Test func anUnsureStateReportIsInconsistent() throws {
        let rig = MonitorRig()
        try rig.register()
        rig.guest.produce(.state(accesses: 1, dmaIntents: 0, reusable: false, unsure: true, eventsLost: 0))
        _ = try rig.announcedRemoteRead()
        #expect(rig.monitor.inconsistency() == "agent's state report says unsure")
    }

    @Test func eventsLostSinceRegistrationAreInconsistent() throws {
        let rig = MonitorRig()
        try rig.register()
        rig.guest.produce(.state(accesses: 1, dmaIntents: 0, reusable: true, unsure: false, eventsLost: 2))
        _ = try rig.announcedRemoteRead()
        #expect(rig.monitor.inconsistency() == nil)  // lost before it registered
        rig.guest.produce(.state(accesses: 2, dmaIntents: 1, reusable: true, unsure: false, eventsLost: 5))
        _ = try rig.announcedRemoteRead()
        #expect(rig.monitor.inconsistency() == "agent's eventsLost went 2 → 5")
    }

    @Test func aSiteThatBecameUnprobedIsInconsistent() throws {
        let rig = MonitorRig(header: RingHeader(unseenSites: 1))
        try rig.register()
        rig.guest.header.unseenSites = 2
        _ = try rig.announcedRemoteRead()
        #expect(rig.monitor.inconsistency() == "unseen_sites went 1 → 2")
    }

    @Test func aNewRegistrationStartsNewBaselines() throws {
        let rig = MonitorRig()
        try rig.register()
        try rig.endpoint.write(region: 0, offset: 7, data: [0xFF])  // unseen by the agent
        _ = try rig.announcedRemoteRead()
        #expect(rig.monitor.inconsistency() != nil)
        try rig.register()
        #expect(rig.monitor.inconsistency() == nil)
        #expect(try rig.announcedRemoteRead() == .hit)
        #expect(rig.monitor.inconsistency() == nil)
    }

    /// accesses_seen is the guest's modular counter: passing 2^64 is still a count of 3.
    @Test func accessCountsAreComparedModulo64Bits() throws {
        let rig = MonitorRig(header: RingHeader(accessesSeen: .max - 1))
        try rig.register()
        try rig.access()
        try rig.access()
        #expect(try rig.announcedRemoteRead() == .hit)
        #expect(rig.guest.header.accessesSeen == 1)
        #expect(rig.monitor.counters.agentAccessesSinceRegistration == 3)
        #expect(rig.monitor.inconsistency() == nil)
    }
}
