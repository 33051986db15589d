import NE2000Model

/// One mode's monitor for one guest: fed every event, it counts an exit for each access its hook set
/// traps (port, direction, page: the I/O bitmap) and drives its model with the exits it acts on *only*,
/// plus interrupt edges and function resets, which a VMM sees without trapping anything.
///
/// Models by mode: `emulated` and `vmm-model` run the `FullModel` (fed everything, the emulated one is
/// the reference), `cooperative` and `on-demand` run the `ReducedModel` on each trapped DMA start
/// (on-demand's hook set exists only while `arming` says so), `passthrough` none.
public struct ShadowMonitor: Sendable {
    public let hooks: HookSet
    public var mode: Mode { hooks.mode }
    /// The full model, in the modes that run one.
    public private(set) var full: FullModel?
    private let reduced: ReducedModel?
    /// When on-demand's trap exists (nil in the other modes, whose sets are fixed).
    public private(set) var arming: OnDemandArming?
    public private(set) var counters = ModeCounters()

    public init(hooks: HookSet, grant: BufferGrant = .wholeDevice) {
        self.hooks = hooks
        arming = hooks.mode == .onDemand ? OnDemandArming(grant: grant) : nil
        switch hooks.mode {
        case .emulated, .vmmModel:
            full = FullModel(grant: grant)
            reduced = nil
        case .cooperative, .onDemand:
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

    /// Whether the mode's hook set exists now (false only for a disarmed on-demand monitor).
    public var armed: Bool { arming?.armed ?? true }

    /// Feeds one event. `readback` follows what the device's readable registers show (used by the
    /// reduced model only); `circumstances` is what a shared device's host knows of an access. Returns
    /// the decisions when a trapped access started DMAs.
    @inline(__always)
    public mutating func observe(_ event: DeviceEvent, readback: DeviceReadback,
                                 circumstances: AccessCircumstances = .alone) -> DMAStarts {
        guard case .access(let access) = event else {
            if full != nil {
                full!.apply(event)
                counters.modelUpdates += 1
            }
            return DMAStarts()
        }
        if arming != nil, arming!.update(circumstances) { counters.exits += 1 }
        let trapped = armed && hooks.traps(access, page: full?.state.page ?? 0)
        guard trapped || circumstances.held || circumstances.hostAnswers else { return DMAStarts() }
        counters.exits += 1
        if circumstances.held { counters.heldExits += 1 }
        if circumstances.hostAnswers && !trapped { counters.hostAnsweredExits += 1 }
        counters.exitsByPort[Int(access.direction.rawValue) << 5 | Int(access.offset & 0x1F)] += 1
        // A held or host-answered access outside the hook set is served unseen by the model.
        guard trapped, hooks.actsOn(access) else { return DMAStarts() }
        counters.actedOn += 1
        let starts: DMAStarts
        if full != nil {
            starts = full!.apply(access)
            counters.modelUpdates += 1
        } else if let reduced {
            let command = UInt8(truncatingIfNeeded: access.value)
            starts = reduced.decide(command: command, readback: readback.values(atCommand: command))
            counters.modelUpdates += 1
        } else {
            starts = DMAStarts()
        }
        counters.dmaIntents += starts.count
        counters.denials += starts.denials
        return starts
    }
}

/// What one mode's monitor counted.
public struct ModeCounters: Sendable, Equatable {
    /// Accesses the mode's I/O bitmap traps, held accesses (a non-owner's bitmap traps every port) and
    /// on-demand's arming kicks: its exits.
    public var exits = 0
    /// Of those, accesses that waited for a shared device (every mode takes them).
    public var heldExits = 0
    /// Of those, accesses outside the mode's set that the host answered itself (a shared device's PROM reads).
    public var hostAnsweredExits = 0
    /// Exits the mode's host acts on (fewer than `exits` only for cooperative: the CR writes that may
    /// start a DMA). Not exits: a VMM takes the exit before it sees the value.
    public var actedOn = 0
    /// Exits by direction (bit 5) and BAR0 offset (bits 4–0): an access is attributed to its first port.
    /// Arming kicks are not accesses and are not here.
    public var exitsByPort = [Int](repeating: 0, count: 64)
    /// Events the mode's model processed.
    public var modelUpdates = 0
    /// DMA starts the model judged.
    public var dmaIntents = 0
    /// Denied DMA starts.
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
    public mutating func observe(_ event: DeviceEvent, circumstances: AccessCircumstances = .alone) -> ModeDecisions {
        switch event {
        case .access: accesses += 1
        case .interrupt: interruptEdges += 1
        case .reset: resets += 1
        }
        var decisions = ModeDecisions()
        for i in monitors.indices {
            decisions[monitors[i].mode] = monitors[i].observe(event, readback: readback, circumstances: circumstances)
        }
        readback.apply(event)
        return decisions
    }

    /// The monitor of `mode`.
    public func monitor(_ mode: Mode) -> ShadowMonitor { monitors.first { $0.mode == mode }! }

    /// Whether on-demand's CR trap is armed after the last event (what an on-demand host acts on).
    public var onDemandArmed: Bool { monitors.first { $0.mode == .onDemand }!.armed }

    /// The ledger so far.
    public var ledger: ExitLedger {
        ExitLedger(enforced: enforced, accesses: accesses, interruptEdges: interruptEdges, resets: resets,
                   modes: monitors.map { ModeLedger(mode: $0.mode, counters: $0.counters, arming: $0.arming, accesses: accesses) })
    }

    /// Runs every mode over a recorded stream (offline replay).
    public static func replay(_ events: [DeviceEvent], enforced: Mode = .cooperative) -> ExitLedger {
        var monitors = GuestMonitors(enforced: enforced)
        for event in events { monitors.observe(event) }
        return monitors.ledger
    }
}

/// Each mode's decisions on one event, without allocating.
public struct ModeDecisions: Sendable, Equatable {
    public var emulated = DMAStarts()
    public var vmmModel = DMAStarts()
    public var cooperative = DMAStarts()
    public var onDemand = DMAStarts()

    public init() {}

    public subscript(mode: Mode) -> DMAStarts {
        get {
            switch mode {
            case .emulated: emulated
            case .vmmModel: vmmModel
            case .cooperative: cooperative
            case .onDemand: onDemand
            case .passthrough: DMAStarts()
            }
        }
        set {
            switch mode {
            case .emulated: emulated = newValue
            case .vmmModel: vmmModel = newValue
            case .cooperative: cooperative = newValue
            case .onDemand: onDemand = newValue
            case .passthrough: break
            }
        }
    }

    /// The emulated monitor sees every access, so its decisions mark the DMA starts.
    public var isEmpty: Bool { emulated.isEmpty }
}
