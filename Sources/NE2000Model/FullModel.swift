/// The full NE2000 model: a state machine of the DP8390 + NE2000 ASIC driven by port accesses, interrupt
/// edges and resets, in the sense of the VPIO slides. It is not an emulator: it keeps only what decides its
/// two outputs, and the write-only registers a context switch must restore.
///
/// Outputs:
/// - `reusable`: no remote DMA or transmit in flight and no interrupt pending, so the device could be
///   handed to another guest now.
/// - a `DMADecision` whenever an event starts a remote read, remote write or transmit: the intent (kind,
///   start, count) and the checking function's verdict against the guest's `BufferGrant`.
///
/// Why data-port accesses are not needed: a remote DMA counts as in flight from the command that starts
/// it until the driver ends it — acknowledges RDC in ISR, aborts it (CR.RD2, which Linux sets in every
/// command it writes between DMAs), starts another, or resets the NIC. That is when the transaction is
/// over for the driver, and it is visible without the data port. The data port only advances `moved`
/// (progress) and feeds the stray-access check, both of which need a monitor that traps it.
/// For the same reason a remote DMA must be programmed afresh (RSAR0/1, RBCR0/1) before it starts: after
/// data-port traffic the device's address and count have moved on where this model does not follow them.
public struct FullModel: Sendable {
    /// Remote DMA progress.
    public struct RemoteDMA: Sendable, Hashable {
        public var kind: DMAKind
        public var start: UInt16
        public var count: UInt16
        /// Bytes the data port has moved so far (only counted by a monitor that traps the data port).
        public var moved: Int
    }

    /// Everything the model tracks. Equatable so tests can compare models.
    public struct State: Sendable, Hashable {
        /// CR.PS1–0.
        public var page: UInt8 = 0
        /// STA set and STP clear (the device transmits only then).
        public var started = false
        public var rsar: UInt16 = 0
        public var rbcr: UInt16 = 0
        /// RSAR0, RSAR1, RBCR0, RBCR1 written since the last remote DMA start (bits 0–3).
        public var programmed: UInt8 = 0
        public var tpsr: UInt8 = 0
        public var tbcr: UInt16 = 0
        public var pstart: UInt8 = 0
        public var pstop: UInt8 = 0
        public var bnry: UInt8 = 0
        public var curr: UInt8 = 0
        public var imr: UInt8 = 0
        public var dcr: UInt8 = 0
        public var tcr: UInt8 = 0
        public var rcr: UInt8 = 0
        public var remote: RemoteDMA?
        public var transmitInFlight = false
        /// The interrupt line's level: an interrupt is pending until the driver clears its ISR bits.
        public var interruptPending = false

        public init() {}
    }

    public private(set) var state = State()
    /// Denials the checking functions gave outside DMA starts (stray data-port accesses).
    public private(set) var strayDataPortAccesses = 0
    public let grant: BufferGrant

    public init(grant: BufferGrant = .wholeDevice) {
        self.grant = grant
    }

    /// No DMA or transmit in flight, no interrupt pending.
    public var reusable: Bool {
        state.remote == nil && !state.transmitInFlight && !state.interruptPending
    }

    /// Applies one event. Returns the decision when the event starts a DMA.
    @discardableResult
    public mutating func apply(_ event: DeviceEvent) -> DMADecision? {
        switch event {
        case .access(let access): return apply(access)
        case .interrupt(let asserted): state.interruptPending = asserted
        case .reset: hardwareReset()
        }
        return nil
    }

    /// Applies one access. Returns the decision when the access starts a DMA.
    @discardableResult
    public mutating func apply(_ access: PortAccess) -> DMADecision? {
        switch access.port {
        case .register(let index):
            let value = UInt8(truncatingIfNeeded: access.value)
            guard access.direction == .write else { return nil }
            if index == CR.offset { return command(value) }
            if state.page == 0 { writePage0(index, value) } else if state.page == 1 && index == Page1.curr { state.curr = value }
            return nil
        case .dataPort:
            dataPort(access)
            return nil
        case .resetPort:
            if access.direction == .read { hardwareReset() }
            return nil
        case .ignored:
            return nil
        }
    }

    private mutating func writePage0(_ index: UInt8, _ value: UInt8) {
        switch index {
        case Page0Write.pstart: state.pstart = value
        case Page0Write.pstop: state.pstop = value
        case Page0Write.bnry: state.bnry = value
        case Page0Write.tpsr: state.tpsr = value
        case Page0Write.tbcr0: state.tbcr = state.tbcr & 0xFF00 | UInt16(value)
        case Page0Write.tbcr1: state.tbcr = state.tbcr & 0x00FF | UInt16(value) << 8
        case Page0Write.isr:
            // Writing 1 clears: the driver's acknowledgement ends what it acknowledges.
            if value & ISR.remoteDMAComplete != 0 { state.remote = nil }
            if value & (ISR.packetTransmitted | ISR.transmitError) != 0 { state.transmitInFlight = false }
        case Page0Write.rsar0:
            state.rsar = state.rsar & 0xFF00 | UInt16(value)
            state.programmed |= 0x1
        case Page0Write.rsar1:
            state.rsar = state.rsar & 0x00FF | UInt16(value) << 8
            state.programmed |= 0x2
        case Page0Write.rbcr0:
            state.rbcr = state.rbcr & 0xFF00 | UInt16(value)
            state.programmed |= 0x4
        case Page0Write.rbcr1:
            state.rbcr = state.rbcr & 0x00FF | UInt16(value) << 8
            state.programmed |= 0x8
        case Page0Write.rcr: state.rcr = value
        case Page0Write.tcr: state.tcr = value
        case Page0Write.dcr: state.dcr = value
        case Page0Write.imr: state.imr = value
        default: break
        }
    }

    /// CR: run state first (the device starts before it transmits), then remote DMA, then transmit.
    private mutating func command(_ value: UInt8) -> DMADecision? {
        state.page = value >> CR.pageShift
        if value & CR.stop != 0 {
            state.started = false
        } else if value & CR.start != 0 {
            state.started = true
        }
        var decision: DMADecision?
        if value & CR.abort != 0 {
            state.remote = nil
        } else if let kind = CR.remoteKind(value) {
            decision = startRemote(kind)
        }
        // A CR write cannot start both (RD and TXP in one write): Linux never does, and the transmit,
        // being the later decision, is the one reported.
        if value & CR.transmit != 0 && state.started {
            decision = startTransmit()
        }
        return decision
    }

    /// Checking function for a remote DMA start.
    private mutating func startRemote(_ kind: DMAKind) -> DMADecision {
        let verdict: Verdict
        if state.programmed != 0xF {
            verdict = .denied(.notProgrammed)
        } else {
            let span = RemoteSpan(start: state.rsar, count: state.rbcr, pstart: state.pstart, pstop: state.pstop)
            verdict = grant.permits(kind, span) ? .allowed : .denied(.outsideGrant)
        }
        state.programmed = 0
        state.remote = RemoteDMA(kind: kind, start: state.rsar, count: state.rbcr, moved: 0)
        return DMADecision(kind: kind, start: state.rsar, count: state.rbcr, verdict: verdict)
    }

    /// Checking function for a transmit: TBCR bytes from TPSR × 256, which do not wrap.
    private mutating func startTransmit() -> DMADecision {
        let span = RemoteSpan(transmitPage: state.tpsr, count: Int(state.tbcr))
        let verdict: Verdict = grant.permits(.transmit, span) ? .allowed : .denied(.outsideGrant)
        state.transmitInFlight = true
        return DMADecision(kind: .transmit, start: UInt16(state.tpsr) << 8, count: state.tbcr, verdict: verdict)
    }

    /// Progress of the remote DMA, and the stray-access check (a data-port access in the wrong direction,
    /// or with none in progress).
    private mutating func dataPort(_ access: PortAccess) {
        let wanted: DMAKind = access.direction == .read ? .remoteRead : .remoteWrite
        guard state.remote?.kind == wanted else {
            strayDataPortAccesses += 1
            return
        }
        let wordMode = state.dcr & DCR.wordTransfer != 0
        state.remote?.moved += access.width == .dword ? 4 : wordMode ? 2 : 1
    }

    /// The reset port or a function reset: the DP8390's power-on state (registers zero, stopped, page 0).
    private mutating func hardwareReset() {
        let pending = state.interruptPending
        state = State()
        // The line is the VMM's own observation; a reset that drops it arrives as an edge.
        state.interruptPending = pending
    }
}
