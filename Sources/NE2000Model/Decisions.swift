/// Why a checking function denied a DMA.
public enum DenialReason: String, Sendable, Hashable, Codable {
    /// The DMA could touch SRAM the guest does not own.
    case outsideGrant = "outside-grant"
}

/// A checking function's answer for one DMA.
public enum Verdict: Sendable, Hashable {
    case allowed
    case denied(DenialReason)

    public var isAllowed: Bool { self == .allowed }
}

/// A DMA start as a monitor judged it.
public struct DMADecision: Sendable, Hashable {
    public var kind: DMAKind
    /// Buffer address the DMA starts at (CRDA as latched from RSAR, TPSR × 256, or CURR × 256).
    public var start: UInt16
    /// The programmed count; nil when the monitor cannot know it (the reduced model: RBCR and TBCR are
    /// write-only).
    public var count: UInt16?
    public var verdict: Verdict

    public init(kind: DMAKind, start: UInt16, count: UInt16?, verdict: Verdict) {
        self.kind = kind
        self.start = start
        self.count = count
        self.verdict = verdict
    }

    /// A harmless DMA a correct driver still rarely makes: it starts outside SRAM, other than a read of
    /// the PROM (memory-size probing writes test patterns at undecoded addresses). Allowed, but counted.
    public var isAnomaly: Bool {
        let address = Int(start)
        if BufferMap.sram.contains(address) { return false }
        return !(kind == .remoteRead && BufferMap.prom.contains(address))
    }
}

/// The DMAs one CR write starts: a remote DMA, a transmit, or both (RD and TXP in one write are judged
/// as two starts, remote first — the order the device runs them in).
public struct DMAStarts: Sendable, Hashable {
    public var remote: DMADecision?
    public var transmit: DMADecision?

    public init(remote: DMADecision? = nil, transmit: DMADecision? = nil) {
        self.remote = remote
        self.transmit = transmit
    }

    public var isEmpty: Bool { remote == nil && transmit == nil }
    public var count: Int { (remote == nil ? 0 : 1) + (transmit == nil ? 0 : 1) }
    public var denials: Int {
        (remote.map { $0.verdict.isAllowed ? 0 : 1 } ?? 0) + (transmit.map { $0.verdict.isAllowed ? 0 : 1 } ?? 0)
    }
}
