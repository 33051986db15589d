import NE2000Model

/// One mode's monitor for one guest: fed every event, it counts an exit for each access its hook set
/// traps and drives its model with those accesses *only*, plus interrupt edges and function resets,
/// which a VMM sees without trapping anything.
///
/// Models by mode: `emulated` and `vmm-model` run the `FullModel` (fed everything, the emulated one is
/// the reference), `cooperative` runs the `ReducedModel` on each trapped DMA start, `passthrough` none.
public struct ShadowMonitor: Sendable {
    public let hooks: HookSet
    public var mode: Mode { hooks.mode }
    /// The full model, in the modes that run one.
    public private(set) var full: FullModel?
    private let reduced: ReducedModel?
    public private(set) var counters = ModeCounters()

    public init(hooks: HookSet, grant: BufferGrant = .wholeDevice) {
        self.hooks = hooks
        switch hooks.mode {
        case .emulated, .vmmModel:
            full = FullModel(grant: grant)
            reduced = nil
        case .cooperative:
            full = nil
            reduced = ReducedModel(grant: grant)
        case .passthrough:
            full = nil
            reduced = nil
        }
    }

    public init(mode: Mode, grant: BufferGrant = .wholeDevice) {
        self.init(hooks: HookSet(mode: mode), grant: grant)
    }

    /// `reusable` of the full model; nil in modes that do not run it.
    public var reusable: Bool? { full?.reusable }

    /// Feeds one event. `readback` is what the device's readable registers hold before the event (used
    /// by the reduced model only). Returns the decision when a trapped access started a DMA.
    @inline(__always)
    public mutating func observe(_ event: DeviceEvent, readback: ReadbackValues) -> DMADecision? {
        guard case .access(let access) = event else {
            if full != nil {
                full!.apply(event)
                counters.modelUpdates += 1
            }
            return nil
        }
        let page = full?.state.page ?? 0
        if hooks.bitmapTraps(access, page: page) { counters.bitmapExits += 1 }
        guard hooks.traps(access, page: page) else { return nil }
        counters.exits += 1
        counters.exitsByPort[Int(access.direction.rawValue) << 5 | Int(access.offset & 0x1F)] += 1
        let decision: DMADecision?
        if full != nil {
            let stray = full!.strayDataPortAccesses
            decision = full!.apply(access)
            counters.denials += full!.strayDataPortAccesses - stray
            counters.modelUpdates += 1
        } else if let reduced {
            decision = reduced.decide(command: UInt8(truncatingIfNeeded: access.value), readback: readback)
            counters.modelUpdates += 1
        } else {
            decision = nil
        }
        if let decision {
            counters.dmaIntents += 1
            if !decision.verdict.isAllowed { counters.denials += 1 }
        }
        return decision
    }
}

/// What one mode's monitor counted.
public struct ModeCounters: Sendable, Equatable {
    /// Accesses the mode's hook set trapped.
    public var exits = 0
    /// Accesses an I/O bitmap alone would trap (no write-value refinement; differs only for cooperative).
    public var bitmapExits = 0
    /// Exits by direction (bit 5) and BAR0 offset (bits 4–0).
    public var exitsByPort = [Int](repeating: 0, count: 64)
    /// Events the mode's model processed.
    public var modelUpdates = 0
    /// DMA starts the model judged.
    public var dmaIntents = 0
    /// Denied DMA starts, plus stray data-port accesses the full model saw.
    public var denials = 0
}

/// All four monitors of one guest, with the readable-register follower the reduced model reads from.
public struct GuestMonitors: Sendable {
    public private(set) var monitors: [ShadowMonitor]
    public private(set) var readback = DeviceReadback()
    public let enforced: Mode
    public private(set) var accesses = 0
    public private(set) var interruptEdges = 0
    public private(set) var resets = 0

    public init(enforced: Mode, grant: BufferGrant = .wholeDevice) {
        self.enforced = enforced
        monitors = Mode.allCases.map { ShadowMonitor(mode: $0, grant: grant) }
    }

    /// Feeds one event to every mode; returns each mode's decision when the event started a DMA that
    /// mode trapped (what an enforcing host acts on).
    @discardableResult
    public mutating func observe(_ event: DeviceEvent) -> ModeDecisions {
        switch event {
        case .access: accesses += 1
        case .interrupt: interruptEdges += 1
        case .reset: resets += 1
        }
        let values = readback.values
        var decisions = ModeDecisions()
        for i in monitors.indices {
            if let decision = monitors[i].observe(event, readback: values) { decisions[monitors[i].mode] = decision }
        }
        readback.apply(event)
        return decisions
    }

    /// The monitor of `mode`.
    public func monitor(_ mode: Mode) -> ShadowMonitor { monitors.first { $0.mode == mode }! }

    /// The ledger so far.
    public var ledger: ExitLedger {
        ExitLedger(enforced: enforced, accesses: accesses, interruptEdges: interruptEdges, resets: resets,
                   modes: monitors.map { ModeLedger(mode: $0.mode, counters: $0.counters, accesses: accesses) })
    }

    /// Runs every mode over a recorded stream (offline replay).
    public static func replay(_ events: [DeviceEvent], enforced: Mode = .cooperative) -> ExitLedger {
        var monitors = GuestMonitors(enforced: enforced)
        for event in events { monitors.observe(event) }
        return monitors.ledger
    }
}

/// Each mode's decision on one event, without allocating.
public struct ModeDecisions: Sendable, Equatable {
    public var emulated: DMADecision?
    public var vmmModel: DMADecision?
    public var cooperative: DMADecision?

    public init() {}

    public subscript(mode: Mode) -> DMADecision? {
        get {
            switch mode {
            case .emulated: emulated
            case .vmmModel: vmmModel
            case .cooperative: cooperative
            case .passthrough: nil
            }
        }
        set {
            switch mode {
            case .emulated: emulated = newValue
            case .vmmModel: vmmModel = newValue
            case .cooperative: cooperative = newValue
            case .passthrough: break
            }
        }
    }

    public var isEmpty: Bool { emulated == nil && vmmModel == nil && cooperative == nil }
}
