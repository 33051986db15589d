import DeviceBus
import VPIOProtocol

/// The host's end of the agent ring: registration (validated against guest RAM the client mapped
/// for DMA) and bounded, sequence-checked reading. Nothing the guest writes is trusted: page
/// addresses, claim numbers (ordered modulo 2^64) and record bodies are all checked, and one look
/// accounts for at most one ring's worth of claims.
public final class AgentChannel {
    public struct Counters: Codable, Equatable, Sendable {
        public var registrations = 0
        public var rejections = 0
        public var unregistrations = 0
        public var recordsRead = 0
        /// Records overwritten before the host read them.
        public var recordsLost = 0
        /// Slots whose sequence was right but whose body did not decode, or changed while read.
        public var recordsMalformed = 0
        /// Slots the host could not read (a registered page stopped being mapped).
        public var unreadable = 0
        /// Times the reader's claim number passed 2^64-1: no honest agent writes 2^64 records, so
        /// each is a protocol violation (counted; the reader carries on modulo 2^64).
        public var sequenceWraps = 0
        public var dmaIntents = 0
        public var stateReports = 0
        public var heartbeats = 0
        public var errors = 0
    }

    /// The agent's latest state report.
    public struct AgentState: Codable, Equatable, Sendable {
        public var accesses: UInt64
        public var dmaIntents: UInt64
        public var reusable: Bool
        public var unsure: Bool
        public var eventsLost: UInt64

        public init(accesses: UInt64, dmaIntents: UInt64, reusable: Bool, unsure: Bool, eventsLost: UInt64) {
            self.accesses = accesses
            self.dmaIntents = dmaIntents
            self.reusable = reusable
            self.unsure = unsure
            self.eventsLost = eventsLost
        }
    }

    public private(set) var pages: [UInt64] = []
    public private(set) var counters = Counters()
    public private(set) var lastState: AgentState?
    /// The first state report since registration: what later reports are compared with.
    public private(set) var firstState: AgentState?
    /// Header as read at registration: the baselines for comparing counts from then on.
    public private(set) var headerAtRegistration: RingHeader?
    /// Rings adopted so far, a ring counted once however often it is registered: it increases only
    /// when a registration adopts other pages, or the same pages with another `agent_pid`, than the
    /// ring adopted last (an unregistration in between changes nothing). Any root process in the
    /// guest can forge intents or repeat the agent's registration, so after a fallback the enforcer
    /// can require a new generation, i.e. a ring that was not the one that failed.
    public private(set) var ringGeneration = 0
    private var lastAdopted: RingIdentity?
    /// Claim number of the oldest record not yet accounted for.
    private var next: UInt64 = 0
    /// Claims after `next` already read: committed while an earlier claim was still being filled.
    /// Within one ring's worth of `next`, so at most `VPIORing.capacity` of them.
    private var readAhead: Set<UInt64> = []

    private struct RingIdentity: Equatable {
        var pages: [UInt64]
        var agentPID: UInt32
    }

    public init() {}

    public var isRegistered: Bool { !pages.isEmpty }

    /// Validates and adopts a ring, replacing the registered one; a rejected ring changes nothing.
    /// Records already in it are skipped: the host reads from the producer's current position on.
    public func register(pages candidate: [UInt64], memory: GuestMemory) -> VPIOCapability.RegistrationError {
        switch validate(candidate, memory: memory) {
        case .registered(let header):
            adopt(candidate, header: header)
            return .none
        case .rejected(let error):
            // A ring already registered stays: a bogus registration from any root process in the
            // guest must not knock a working agent (and the host's cooperative mode) out.
            counters.rejections += 1
            return error
        }
    }

    private func adopt(_ candidate: [UInt64], header: RingHeader) {
        let identity = RingIdentity(pages: candidate, agentPID: header.agentPID)
        if identity != lastAdopted { ringGeneration += 1 }
        lastAdopted = identity
        pages = candidate
        headerAtRegistration = header
        next = header.head
        readAhead = []
        lastState = nil
        firstState = nil
        counters.registrations += 1
    }

    public func unregister() {
        if isRegistered { counters.unregistrations += 1 }
        pages = []
        headerAtRegistration = nil
    }

    private enum Validation { case registered(RingHeader), rejected(VPIOCapability.RegistrationError) }

    private func validate(_ candidate: [UInt64], memory: GuestMemory) -> Validation {
        guard candidate.count == VPIORing.pages else { return .rejected(.pageCount) }
        for page in candidate {
            guard page % UInt64(VPIORing.pageSize) == 0,
                  memory.read(guestAddress: page, count: VPIORing.pageSize) != nil else { return .rejected(.pageAddress) }
        }
        guard let bytes = memory.read(guestAddress: candidate[0], count: VPIORing.HeaderOffset.size),
              let header = RingHeader(bytes: bytes), header.isCompatible else { return .rejected(.badHeader) }
        return .registered(header)
    }

    /// The ring header now; nil when not registered or unreadable.
    public func header(memory: GuestMemory) -> RingHeader? {
        guard let page = pages.first, let bytes = memory.read(guestAddress: page, count: VPIORing.HeaderOffset.size)
        else { return nil }
        return RingHeader(bytes: bytes)
    }

    /// Reads every record committed since the last look, in claim order, looking past slots still
    /// being filled: a producer interrupted between its claim and its commit (the user-space agent,
    /// by an interrupt whose handler the BPF probe traces) must not hide the intents committed after
    /// it, as the vCPU that would finish it is stalled in the very access the host is verifying. One
    /// look reads at most one ring's worth of slots (the ring never holds more) and counts at most one
    /// ring's worth as lost (a longer skip is only the guest's word, its `head`). The two bounds are
    /// apart: after a lap, the whole ring the reader skipped to is still read, its newest intent too.
    public func poll(memory: GuestMemory) -> [RingRecord] {
        guard isRegistered else { return [] }
        // The claims producers have made: how far past an unfinished slot the reader may look.
        let head = header(memory: memory)?.head
        var records: [RingRecord] = []
        var claim = next
        // Slots looked at: each read, lost or unfinished slot is one; two rings' worth bounds the work.
        var reads = VPIORing.capacity, losses = VPIORing.capacity, looks = 2 * VPIORing.capacity
        while reads > 0, looks > 0 {
            // Claim 2^64-1 would commit seq 0, the empty mark: it can never be read, so step over it.
            if claim == .max || readAhead.contains(claim) {
                claim = settle(claim)
                continue
            }
            looks -= 1
            let address = slotAddress(claim: claim)
            guard let bytes = memory.read(guestAddress: address, count: VPIORing.recordSize),
                  let sequence = RingRecord.sequence(of: bytes) else {
                counters.unreadable += 1
                break
            }
            let expected = claim &+ 1
            if sequence == expected {
                reads -= 1
                let following = settle(claim)
                if let record = committedRecord(bytes, sequence: sequence, at: address, memory: memory) {
                    account(record)
                    records.append(record)
                } else {
                    counters.recordsMalformed += 1
                }
                claim = following
            } else if sequence.isAhead(of: expected) {
                guard losses > 0 else { break }
                let skip = skipOvertaken(at: claim, head: head ?? sequence, budget: losses)
                losses -= skip.lost
                claim = skip.resume
            } else if let head, head.isAhead(of: expected), expected &- next < UInt64(VPIORing.capacity) {
                claim = expected  // still being filled (its producer commits it later); within one ring of `next`
            } else {
                break  // nothing claimed beyond: not written yet
            }
        }
        return records
    }

    /// Guest address of the slot that holds claim `claim`. The pages were checked at registration
    /// to be 4 KiB aligned and readable, so adding an offset inside a page cannot overflow.
    private func slotAddress(claim: UInt64) -> UInt64 {
        let offset = VPIORing.recordOffset(slot: Int(claim % UInt64(VPIORing.capacity)))
        return pages[offset / VPIORing.pageSize] + UInt64(offset % VPIORing.pageSize)
    }

    /// The record in `bytes` if it decodes and its commit word, read again, still says `sequence`
    /// (a producer that lapped the reader mid-copy has changed it).
    private func committedRecord(_ bytes: [UInt8], sequence: UInt64, at address: UInt64, memory: GuestMemory) -> RingRecord? {
        guard memory.read(guestAddress: address, count: 8).flatMap(RingRecord.sequence(of:)) == sequence else { return nil }
        return try? RingRecord(bytes: bytes)
    }

    /// Claim `claim` is accounted for (read, malformed, lost or unreadable by definition): the reader's
    /// `next` moves past it and past every later claim already read, or it waits in `readAhead`.
    /// Returns the claim to look at after it.
    private func settle(_ claim: UInt64) -> UInt64 {
        guard claim == next else {
            readAhead.insert(claim)
            return claim &+ 1
        }
        advance(to: next &+ 1)
        while next == .max || readAhead.remove(next) != nil { advance(to: next &+ 1) }
        return next
    }

    /// The slot of `claim` holds a later record: a producer lapped the reader. The claims the ring can
    /// no longer hold by the guest's `head` (by the record seen when the header is unreadable) are lost,
    /// and `claim` itself at least; later unfinished slots keep their chance. Counts at most `budget`.
    private func skipOvertaken(at claim: UInt64, head: UInt64, budget: Int) -> (lost: Int, resume: UInt64) {
        let oldest = head &- UInt64(VPIORing.capacity)
        guard oldest.isAhead(of: next), oldest.isAhead(of: claim) else {
            counters.recordsLost += 1
            return (1, settle(claim))
        }
        let alreadyRead = readAhead.filter { oldest.isAhead(of: $0) }
        readAhead.subtract(alreadyRead)
        let lost = Int(min((oldest &- next) - UInt64(alreadyRead.count), UInt64(budget)))
        counters.recordsLost += lost
        advance(to: oldest)
        while readAhead.remove(next) != nil { advance(to: next &+ 1) }
        return (lost, next)
    }

    /// Moves the reader forward to `claim`, counting a pass over 2^64 as a wrap.
    private func advance(to claim: UInt64) {
        if claim < next { counters.sequenceWraps += 1 }
        next = claim
    }

    private func account(_ record: RingRecord) {
        counters.recordsRead += 1
        switch record.body {
        case .dmaIntent: counters.dmaIntents += 1
        case let .state(accesses, dmaIntents, reusable, unsure, eventsLost):
            counters.stateReports += 1
            lastState = AgentState(accesses: accesses, dmaIntents: dmaIntents, reusable: reusable, unsure: unsure,
                                   eventsLost: eventsLost)
            if firstState == nil { firstState = lastState }
        case .heartbeat: counters.heartbeats += 1
        case .error: counters.errors += 1
        }
    }
}
