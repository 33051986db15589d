import DeviceBus
import RTL8139
import VPIOMonitor

/// One mode's view of one guest's RTL8139: the exits its trap set takes and, in the modes that check
/// DMA, the check it makes at each trapped write — with the registers the mode's host knows: the
/// device's own (emulated: the VMM is the device; cooperative: it reads them back, which costs no exit),
/// or, in vmm-model, its own copy fed only the writes it traps.
public struct RTL8139ModeMonitor: Sendable {
    public let mode: Mode
    /// The I/O-space writes trapped; nil: every access.
    private let writes: [ClosedRange<UInt64>]?
    /// vmm-model's full model of the steering registers.
    public private(set) var model: RTL8139State?
    /// The transmits the write being judged starts, for the model to hand back once it is delivered.
    private var starting: [Int] = []
    public private(set) var counters = Counters()

    public struct Counters: Sendable, Equatable {
        public var exits = 0
        /// DMA starts and ring setups checked, and the writes denied.
        public var checks = 0
        public var denials = 0
        /// Exits by region (I/O, memory), direction and offset: index region << 9 | direction << 8 | offset.
        public var exitsByPort = [Int](repeating: 0, count: 1024)
    }

    public init(mode: Mode) {
        self.mode = mode
        writes = RTL8139HookSet.writes(for: mode)
        model = mode == .vmmModel ? RTL8139State() : nil
    }

    /// Whether the mode checks DMA at all (passthrough does not).
    public var checks: Bool { mode != .passthrough }

    /// What an I/O bitmap or, for the memory BAR, a page table can trap. The 256-byte MMIO BAR lies in
    /// one 4 KiB page, so a mode that hooks any register there traps every access to it.
    public func traps(_ access: BusAccess) -> Bool {
        if access.region == 1 { return mode != .passthrough }
        guard let writes else { return true }
        return RTL8139HookSet.traps(offset: access.offset, width: access.width, direction: access.direction, set: writes)
    }

    /// Counts the access if it exits; for a trapped write, examines it against `device` (or the mode's
    /// own model) before it reaches the device.
    public mutating func observe(_ access: BusAccess, device: RTL8139State, check: RTL8139DMACheck) -> RTL8139DMACheck.Examination? {
        guard count(access), access.direction == .write, checks else { return nil }
        let examination = check.examine(offset: access.offset, width: access.width, value: access.value, device: model ?? device)
        starting = examination.transmits
        counters.checks += examination.checks
        if examination.verdict != .pass { counters.denials += 1 }
        return examination
    }

    /// Counts the access if it exits; whether it did. Reads stop here: they start no DMA.
    @discardableResult
    public mutating func count(_ access: BusAccess) -> Bool {
        guard traps(access) else { return false }
        counters.exits += 1
        counters.exitsByPort[Int(min(access.region, 1)) << 9 | Int(access.direction.rawValue) << 8 | Int(access.offset & 0xFF)] += 1
        return true
    }

    /// What became of a write: delivered to the device or absorbed, and the descriptors the host aborted.
    /// vmm-model's model follows what it trapped of it. It cannot read TSD, so it takes a transmit it let
    /// start as handed back (the device sends or refuses it within the write): otherwise every later CR
    /// write would re-check buffers long sent, which the driver may since have freed.
    public mutating func settle(_ access: BusAccess, delivered: Bool, aborted: [Int]) {
        guard model != nil, traps(access), access.direction == .write else { return }
        if delivered { model!.applySteeringWrite(offset: access.offset, width: access.width, value: access.value) }
        for index in (delivered ? starting : []) + aborted { model!.tsd[index] |= RTL8139TransmitStatus.own }
        starting = []
    }

    /// A function-level reset, which every VMM sees.
    public mutating func reset() {
        if model != nil { model = RTL8139State() }
    }
}

/// Every mode's monitor over one guest's RTL8139, one enforced: what vpio-host's `--ledger-json` holds
/// for this device. On-demand has no RTL8139 form (`RTL8139HookSet.writes(for:)`).
public struct RTL8139Monitors: Sendable {
    public static let modes: [Mode] = [.emulated, .vmmModel, .cooperative, .passthrough]
    public let enforced: Mode
    public private(set) var monitors: [RTL8139ModeMonitor]
    public private(set) var accesses = 0
    public private(set) var interruptEdges = 0
    public private(set) var resets = 0

    /// - Precondition: `enforced` is one of `modes`.
    public init(enforced: Mode) {
        precondition(Self.modes.contains(enforced), "no RTL8139 form of \(enforced)")
        self.enforced = enforced
        monitors = Self.modes.map(RTL8139ModeMonitor.init(mode:))
    }

    public var enforcedMonitor: RTL8139ModeMonitor { monitors.first { $0.mode == enforced }! }

    /// A read, after the device answered.
    public mutating func read(_ access: BusAccess) {
        accesses += 1
        for i in monitors.indices { monitors[i].count(access) }
    }

    /// A write before it reaches the device: every mode counts and examines it; the enforced mode's
    /// verdict is returned (pass when it does not trap it). Call `settle` once the host acted on it.
    public mutating func write(_ access: BusAccess, device: RTL8139State, check: RTL8139DMACheck) -> RTL8139DMACheck.Verdict {
        accesses += 1
        var verdict = RTL8139DMACheck.Verdict.pass
        for i in monitors.indices {
            let examination = monitors[i].observe(access, device: device, check: check)
            if monitors[i].mode == enforced, let examination { verdict = examination.verdict }
        }
        return verdict
    }

    public mutating func settle(_ access: BusAccess, delivered: Bool, aborted: [Int]) {
        for i in monitors.indices { monitors[i].settle(access, delivered: delivered, aborted: aborted) }
    }

    public mutating func interrupt() { interruptEdges += 1 }

    public mutating func reset() {
        resets += 1
        for i in monitors.indices { monitors[i].reset() }
    }

    /// The ledger, in the NE2000's format: exits are trapped accesses; acted on and model updates are
    /// the exits (every mode here acts on each of its exits); intents are the DMA starts and ring setups
    /// checked. Port keys: "0x10w" for I/O space, "m0x10w" for the memory BAR.
    public var ledger: ExitLedger {
        ExitLedger(enforced: enforced, accesses: accesses, interruptEdges: interruptEdges, resets: resets, modes: monitors.map { m in
            var ports: [String: Int] = [:]
            for (index, count) in m.counters.exitsByPort.enumerated() where count > 0 {
                let key = ModeLedger.portKey(offset: UInt8(index & 0xFF), direction: index & 0x100 != 0 ? .write : .read)
                ports[(index & 0x200 != 0 ? "m" : "") + key] = count
            }
            return ModeLedger(mode: m.mode, exits: m.counters.exits, actedOn: m.checks ? m.counters.exits : 0, accesses: accesses,
                              modelUpdates: m.checks ? m.counters.exits : 0, dmaIntents: m.counters.checks,
                              denials: m.counters.denials, exitsByPort: ports)
        })
    }
}
