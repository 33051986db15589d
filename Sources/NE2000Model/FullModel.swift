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
/// (progress, in a monitor that traps it). The range is exact without it too: the device latches RSAR,
/// RBCR and the ring at the command and moves data only until that count is used up.
public struct FullModel: Sendable {
    /// Remote DMA progress.
    public struct RemoteDMA: Sendable, Hashable {
        public var kind: DMAKind
        public var start: UInt16
        public var count: UInt16
        /// Bytes the data port has moved so far (only counted by a monitor that traps the data port).
        public var moved: Int

        public init(kind: DMAKind, start: UInt16, count: UInt16, moved: Int) {
            self.kind = kind
            self.start = start
            self.count = count
            self.moved = moved
        }
    }

    /// Everything the model tracks. Equatable so tests can compare models.
    public struct State: Sendable, Hashable {
        /// CR.PS1–0.
        public var page: UInt8 = 0
        /// STA set and STP clear (the device transmits only then).
        public var started = false
        public var rsar: UInt16 = 0
        public var rbcr: UInt16 = 0
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
    public let grant: BufferGrant

    public init(grant: BufferGrant = .wholeDevice) {
        self.grant = grant
    }

    /// No DMA or transmit in flight, no interrupt pending.
    public var reusable: Bool {
        state.remote == nil && !state.transmitInFlight && !state.interruptPending
    }

    /// Applies one event. Returns the decisions when the event starts DMAs.
    @discardableResult
    public mutating func apply(_ event: DeviceEvent) -> DMAStarts {
        switch event {
        case .access(let access): return apply(access)
        case .interrupt(let asserted): state.interruptPending = asserted
        case .reset: hardwareReset()
        }
        return DMAStarts()
    }

    /// Applies one access. Returns the decisions when the access starts DMAs.
    @discardableResult
    public mutating func apply(_ access: PortAccess) -> DMAStarts {
        switch access.port {
        case .register(let index) where access.direction == .write:
            let value = UInt8(truncatingIfNeeded: access.value)
            if index == CR.offset { return command(value) }
            if state.page == 0 {
                writePage0(index, value)
            } else if state.page == 1 && index == Page1.curr.rawValue {
                state.curr = value
            }
        case .dataPort:
            dataPort(access)
        case .resetPort where access.direction == .read:
            hardwareReset()
        case .register, .resetPort, .ignored:
            break
        }
        return DMAStarts()
    }

    private mutating func writePage0(_ index: UInt8, _ value: UInt8) {
        switch Page0Write(rawValue: index) {
        case .pstart?: state.pstart = value
        case .pstop?: state.pstop = value
        case .bnry?: state.bnry = value
        case .tpsr?: state.tpsr = value
        case .tbcr0?: state.tbcr = state.tbcr & 0xFF00 | UInt16(value)
        case .tbcr1?: state.tbcr = state.tbcr & 0x00FF | UInt16(value) << 8
        case .isr?:
            // Writing 1 clears: the driver's acknowledgement ends what it acknowledges.
            if value & ISR.remoteDMAComplete != 0 { state.remote = nil }
            if value & (ISR.packetTransmitted | ISR.transmitError) != 0 { state.transmitInFlight = false }
        case .rsar0?: state.rsar = state.rsar & 0xFF00 | UInt16(value)
        case .rsar1?: state.rsar = state.rsar & 0x00FF | UInt16(value) << 8
        case .rbcr0?: state.rbcr = state.rbcr & 0xFF00 | UInt16(value)
        case .rbcr1?: state.rbcr = state.rbcr & 0x00FF | UInt16(value) << 8
        case .rcr?: state.rcr = value
        case .tcr?: state.tcr = value
        case .dcr?: state.dcr = value
        case .imr?: state.imr = value
        case .cr?, nil: break
        }
    }

    /// CR, as `CommandEffect` defines it: run state, then remote DMA, then transmit — both judged when
    /// one write asks for both.
    private mutating func command(_ value: UInt8) -> DMAStarts {
        let effect = CommandEffect(command: value, wasRunning: state.started)
        state.page = effect.page
        state.started = effect.runningAfter
        var starts = DMAStarts()
        if effect.endsRemote { state.remote = nil }
        if let kind = effect.startsRemote { starts.remote = startRemote(kind) }
        if effect.startsTransmit { starts.transmit = startTransmit() }
        return starts
    }

    /// Checking function for a remote DMA start: exactly RBCR bytes from RSAR in the ring latched now.
    private mutating func startRemote(_ kind: DMAKind) -> DMADecision {
        let span = RemoteSpan(start: state.rsar, count: state.rbcr, pstart: state.pstart, pstop: state.pstop)
        state.remote = state.rbcr > 0 ? RemoteDMA(kind: kind, start: state.rsar, count: state.rbcr, moved: 0) : nil
        return DMADecision(kind: kind, start: state.rsar, count: state.rbcr, verdict: grant.verdict(span))
    }

    /// Checking function for a transmit: TBCR bytes from TPSR × 256 (none when the NE2000 will abort it),
    /// and in loopback the receive ring the frame comes back into.
    private mutating func startTransmit() -> DMADecision {
        var verdict = grant.verdict(RemoteSpan(transmitPage: state.tpsr, count: Int(state.tbcr)))
        if state.tcr & TCR.loopbackMask != 0, verdict.isAllowed {
            verdict = grant.verdict(RemoteSpan(ringStart: state.pstart, ringStop: state.pstop))
        }
        state.transmitInFlight = true
        return DMADecision(kind: .transmit, start: UInt16(state.tpsr) << 8, count: state.tbcr, verdict: verdict)
    }

    /// Progress of the remote DMA (a data-port access of its direction).
    private mutating func dataPort(_ access: PortAccess) {
        let wanted: DMAKind = access.direction == .read ? .remoteRead : .remoteWrite
        guard state.remote?.kind == wanted else { return }
        state.remote?.moved += RemoteAddress.bytesPerAccess(access.width, dataConfiguration: state.dcr)
    }

    /// The reset port or a function reset: the DP8390's power-on state (registers zero, stopped, page 0).
    private mutating func hardwareReset() {
        let pending = state.interruptPending
        state = State()
        // The line is the VMM's own observation; a reset that drops it arrives as an edge.
        state.interruptPending = pending
    }
}
