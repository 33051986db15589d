import VPIOProtocol

/// The host's end of the agent ring: registration (validated against guest RAM the client mapped
/// for DMA) and bounded, sequence-checked reading. Nothing the guest writes is trusted: page
/// addresses, indices and record bodies are all checked, and one look reads at most one ring's
/// worth of slots.
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
    /// Header as read at registration: the baselines for comparing counts from then on.
    public private(set) var headerAtRegistration: RingHeader?
    /// Claim number of the next record to read.
    private var next: UInt64 = 0

    public init() {}

    public var isRegistered: Bool { !pages.isEmpty }

    /// Validates and adopts a ring, replacing the registered one; a rejected ring changes nothing.
    /// Records already in it are skipped: the host reads from the producer's current position on.
    public func register(pages candidate: [UInt64], memory: GuestMemory) -> VPIOCapability.RegistrationError {
        let result = validate(candidate, memory: memory)
        switch result {
        case .registered(let header):
            pages = candidate
            headerAtRegistration = header
            next = header.head
            lastState = nil
            counters.registrations += 1
            return .none
        case .rejected(let error):
            // A ring already registered stays: a bogus registration from any root process in the
            // guest must not knock a working agent (and the host's cooperative mode) out.
            counters.rejections += 1
            return error
        }
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

    /// Reads every record committed since the last look, in order (at most one ring's worth).
    public func poll(memory: GuestMemory) -> [RingRecord] {
        guard isRegistered else { return [] }
        var records: [RingRecord] = []
        for _ in 0..<VPIORing.capacity {
            let slot = Int(next % UInt64(VPIORing.capacity))
            let offset = VPIORing.recordOffset(slot: slot)
            let address = pages[offset / VPIORing.pageSize] + UInt64(offset % VPIORing.pageSize)
            guard let bytes = memory.read(guestAddress: address, count: VPIORing.recordSize),
                  let sequence = RingRecord.sequence(of: bytes) else {
                counters.unreadable += 1
                break
            }
            if sequence == next + 1 {
                // Re-read the commit word: a producer that lapped us mid-copy changes it.
                guard memory.read(guestAddress: address, count: 8).flatMap(RingRecord.sequence(of:)) == sequence,
                      let record = try? RingRecord(bytes: bytes) else {
                    counters.recordsMalformed += 1
                    next += 1
                    continue
                }
                next += 1
                account(record)
                records.append(record)
            } else if sequence > next + 1 {
                // Overtaken: skip to the oldest record the ring can still hold.
                let head = header(memory: memory)?.head ?? sequence
                let oldest = head > UInt64(VPIORing.capacity) ? head - UInt64(VPIORing.capacity) : 0
                let resume = max(next + 1, oldest)
                counters.recordsLost += Int(clamping: resume - next)
                next = resume
            } else {
                break  // not written yet
            }
        }
        return records
    }

    private func account(_ record: RingRecord) {
        counters.recordsRead += 1
        switch record.body {
        case .dmaIntent: counters.dmaIntents += 1
        case let .state(accesses, dmaIntents, reusable, unsure, eventsLost):
            counters.stateReports += 1
            lastState = AgentState(accesses: accesses, dmaIntents: dmaIntents, reusable: reusable, unsure: unsure,
                                   eventsLost: eventsLost)
        case .heartbeat: counters.heartbeats += 1
        case .error: counters.errors += 1
        }
    }
}
