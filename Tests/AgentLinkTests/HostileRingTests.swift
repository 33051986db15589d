import AgentLink
import Testing
import VPIOProtocol

/// Every number in the ring is the guest's: extreme or random values must never trap the host, and
/// what the reader counts stays within what it promises.
@Suite struct HostileRingTests {
    static let extremes: [UInt64] = [0, 1, .max, .max - 1, 1 << 63, (1 << 63) - 1, (1 << 63) + 1]

    /// Registered with head, intents_written and accesses_seen at each extreme value, then driven
    /// with intents and DMA starts: the host keeps serving and its counters stay defined.
    @Test(arguments: extremes)
    func extremeHeaderCountersNeverTrap(value: UInt64) throws {
        let rig = MonitorRig(header: RingHeader(head: value, accessesSeen: value, intentsWritten: value, unseenSites: value))
        try rig.register()
        for _ in 0..<600 {
            #expect(try rig.announcedRemoteRead() != nil)
        }
        let counters = rig.capability.channel.counters
        #expect(counters.recordsRead + counters.recordsMalformed <= 600)
        #expect(rig.monitor.counters.accessCountMismatches == 0)
        #expect(rig.monitor.counters.intents.dmaStarts == 600)
    }

    /// A producer at the end of the number space: claim 2^64-2 commits seq 2^64-1, claim 2^64-1
    /// would commit seq 0 (the empty mark, so the reader steps over it), claim 2^64 ≡ 0 commits seq 1.
    @Test func claimNumbersPastTwoToTheSixtyFourWrapAndAreReported() throws {
        let rig = MonitorRig(header: RingHeader(head: .max - 1, intentsWritten: .max))
        try rig.register()
        #expect(try rig.announcedRemoteRead() == .hit)  // intent index 2^64-1 at claim 2^64-2
        let channel = rig.capability.channel
        #expect(channel.counters.sequenceWraps == 1 && rig.monitor.counters.intents.indexWraps == 1)
        #expect(rig.monitor.inconsistency() == "the ring's claim numbers wrapped past 2^64; intent indexes wrapped past 2^64")
        rig.guest.produce(.heartbeat(uptimeNanoseconds: 1, accesses: 0))  // claim 2^64-1: never read
        #expect(try rig.announcedRemoteRead() == .hit)  // intent index 0 at claim 0
        #expect(channel.counters.recordsRead == 2 && channel.counters.heartbeats == 0)
        #expect(channel.counters.sequenceWraps == 1 && rig.monitor.counters.intents.indexWraps == 1)
    }

    /// A slot whose seq is one past the last claim number (0, when the reader is at 2^64-1) is an
    /// empty slot, and a slot claiming a record 2^63 ahead is behind: neither is read.
    @Test func sequencesAroundTheWrapAreNotTakenForRecords() throws {
        let guest = FakeGuest(header: RingHeader(head: .max))
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        var record = RingRecord(sequence: 0, body: guest.intent(7)).encode()
        guest.write(record, ringOffset: VPIORing.recordOffset(slot: 255))
        record = RingRecord(sequence: 1 + (1 << 63), body: guest.intent(8)).encode()
        guest.write(record, ringOffset: VPIORing.recordOffset(slot: 0))
        for _ in 0..<3 { #expect(channel.poll(memory: guest).isEmpty) }
        #expect(channel.counters.recordsRead == 0 && channel.counters.recordsLost == 0)
        #expect(channel.counters.sequenceWraps == 1)
    }

    /// Overtaken by a claimed head 2^63 ahead: the reader skips there but counts one ring's worth.
    @Test func aHugeSkipCountsAtMostOneRingPerPoll() {
        let guest = FakeGuest()
        let channel = AgentChannel()
        #expect(channel.register(pages: guest.ringPages, memory: guest) == .none)
        guest.header.head = (1 << 63) - 1
        guest.write(RingRecord(sequence: 1 << 62, body: guest.intent(0)).encode(), ringOffset: VPIORing.recordOffset(slot: 0))
        #expect(channel.poll(memory: guest).isEmpty)
        #expect(channel.counters.recordsLost == VPIORing.capacity)
    }

    /// Indexes far ahead of the expected one are, modulo 2^64, behind it: dropped, never matched.
    @Test func intentIndexesAreOrderedModulo64Bits() {
        func intent(_ index: UInt64) -> RingRecord {
            RingRecord(sequence: 1, body: .dmaIntent(kind: .remoteRead, command: 0, start: 0, count: 0, intentIndex: index, accessIndex: 0))
        }
        let matcher = IntentMatcher()
        matcher.reset(base: .max)
        matcher.ingest([intent(.max - (1 << 62)), intent(.max), intent(0), intent((1 << 63) + 2), intent(1)])
        #expect(matcher.dmaStarted(kind: .remoteRead) == .hit)
        #expect(matcher.dmaStarted(kind: .remoteRead) == .hit)
        #expect(matcher.dmaStarted(kind: .remoteRead) == .hit)
        #expect(matcher.counters == IntentMatcher.Counters(dmaStarts: 3, hits: 3, unmatched: 2, indexWraps: 1))
    }

    /// Random headers and records, some near the claim numbers the reader expects, through
    /// registration, polls and DMA starts: no trap, and no poll reads, or counts as lost, more than one ring.
    @Test func randomRingsNeverTrapAndStayWithinOneRingPerPoll() throws {
        var random = SeededRandom(seed: 0x5EED_1234_ABCD_0001)
        for _ in 0..<1000 {
            let rig = MonitorRig(header: randomHeader(&random))
            try rig.register(pages: random.next() % 8 == 0 ? rig.guest.ringPages.reversed() : rig.guest.ringPages)
            for _ in 0..<4 {
                scribble(on: rig.guest, &random)
                let before = rig.capability.channel.counters
                _ = rig.monitor.verify(kind: .remoteRead, start: UInt32(truncatingIfNeeded: random.next()))
                _ = rig.monitor.inconsistency()
                expectOneRingAtMost(since: before, now: rig.capability.channel.counters)
            }
        }
    }

    func expectOneRingAtMost(since before: AgentChannel.Counters, now: AgentChannel.Counters) {
        let read = (now.recordsRead - before.recordsRead) + (now.recordsMalformed - before.recordsMalformed)
        #expect(read >= 0 && read <= VPIORing.capacity)
        #expect(now.recordsLost - before.recordsLost >= 0 && now.recordsLost - before.recordsLost <= VPIORing.capacity)
        #expect(now.unreadable - before.unreadable <= 1)
        #expect(now.sequenceWraps - before.sequenceWraps <= VPIORing.capacity)
    }

    /// A compatible header half the time (so the ring is read), random counters always.
    func randomHeader(_ random: inout SeededRandom) -> RingHeader {
        var header = RingHeader(bytes: (0..<VPIORing.HeaderOffset.size).map { _ in UInt8(truncatingIfNeeded: random.next()) })!
        if random.next() % 2 == 0 {
            header.magic = VPIORing.magic
            header.version = VPIORing.version
            header.recordSize = UInt16(VPIORing.recordSize)
            header.capacity = UInt32(VPIORing.capacity)
        }
        header.head = random.interesting(near: header.head)
        return header
    }

    /// A producer that mostly follows the protocol from the header's head on, committing random
    /// bodies (usually of a known type), and now and then writes a stray sequence word, jumps to
    /// another claim number or publishes a head from anywhere.
    func scribble(on guest: FakeGuest, _ random: inout SeededRandom) {
        var claim = guest.header.head
        for _ in 0..<Int(random.next() % 300) {
            var bytes = (0..<VPIORing.recordSize).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if random.next() % 4 != 0 { (bytes[8], bytes[9], bytes[24]) = (UInt8(1 + random.next() % 4), 0, UInt8(1 + random.next() % 3)) }
            let sequence = random.next() % 8 == 0 ? random.interesting(near: claim) : claim &+ 1
            for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i))) }
            guest.write(bytes, ringOffset: VPIORing.recordOffset(slot: Int(claim % UInt64(VPIORing.capacity))))
            claim = random.next() % 16 == 0 ? random.interesting(near: claim) : claim &+ 1
        }
        guest.header.head = random.next() % 8 == 0 ? random.interesting(near: claim) : claim
        guest.header.accessesSeen = random.interesting(near: guest.header.accessesSeen)
        guest.header.intentsWritten = random.interesting(near: guest.header.intentsWritten)
        guest.header.unseenSites = random.next() % 3
    }
}

/// xorshift64*: the same "random" rings on every run.
struct SeededRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    /// A value near `value` (a few claims either side), at an edge of the number space, or anything.
    mutating func interesting(near value: UInt64) -> UInt64 {
        switch next() % 4 {
        case 0: value &+ next() % 600 &- 300
        case 1: HostileRingTests.extremes[Int(next() % UInt64(HostileRingTests.extremes.count))] &+ next() % 3
        default: next()
        }
    }
}
