import NE2000Model

/// The four ways to run a guest (DESIGN.md, "Modes and how exits are counted").
public enum Mode: String, CaseIterable, Codable, Sendable {
    /// Every device access exits: full emulation, the baseline.
    case emulated
    /// The seed's VPIO: the VMM hooks the minimal set that keeps its full model correct.
    case vmmModel = "vmm-model"
    /// This project: the host hooks only the DMA-starting port (CR, every write) and checks the writes that
    /// start a DMA with the reduced model.
    case cooperative
    /// Issue 12's mode below the seed: the cooperative set (CR, every write), armed only while the host
    /// needs it (`OnDemandArming`): while another guest waits for the device, or while the guest's grant
    /// leaves part of buffer memory to others. A guest that owns all of it cannot make an NE2000 DMA touch
    /// anything of anyone else's, so the rest of the time nothing traps; a switch restores the next owner's
    /// memory whole (host-monitor/SHARING.md).
    case onDemand = "on-demand"
    /// Nothing exits and nothing is checked (unsafe; one guest only).
    case passthrough
}

/// One entry of the vmm-model hook list: a port range, a direction and, for the page-selected DP8390
/// registers, the page in which it is hooked (nil: every page).
public struct HookPoint: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var offsets: ClosedRange<UInt8>
    public var direction: AccessDirection
    public var page: UInt8?

    public init(_ name: String, _ offsets: ClosedRange<UInt8>, _ direction: AccessDirection, page: UInt8? = nil) {
        self.name = name
        self.offsets = offsets
        self.direction = direction
        self.page = page
    }

    public var description: String { name }

    /// What the full model needs, and nothing else (the removal test drops each in turn):
    /// - CR writes, every page: page select, run state, DMA start and abort, transmit.
    /// - page 0 writes of PSTART, PSTOP (the ring a remote DMA wraps in, so the range check), TPSR,
    ///   TBCR0/1, RSAR0/1, RBCR0/1 (the intents) and ISR (the driver acknowledging RDC, PTX, TXE ends a
    ///   DMA or transmit: `reusable`).
    /// - reset-port reads: a reset ends everything in flight.
    /// Not hooked: every read of a register (a read changes nothing the model decides), the data port
    /// (see `FullModel`), BNRY, IMR, DCR, TCR, RCR and page 1 (their shadows go stale in this mode; no
    /// output depends on them — a context switch would read them from a model that hooks them).
    public static let vmmModel: [HookPoint] = [
        HookPoint("CR write", 0x00...0x00, .write),
        HookPoint("PSTART write", 0x01...0x01, .write, page: 0),
        HookPoint("PSTOP write", 0x02...0x02, .write, page: 0),
        HookPoint("TPSR write", 0x04...0x04, .write, page: 0),
        HookPoint("TBCR0 write", 0x05...0x05, .write, page: 0),
        HookPoint("TBCR1 write", 0x06...0x06, .write, page: 0),
        HookPoint("ISR write", 0x07...0x07, .write, page: 0),
        HookPoint("RSAR0 write", 0x08...0x08, .write, page: 0),
        HookPoint("RSAR1 write", 0x09...0x09, .write, page: 0),
        HookPoint("RBCR0 write", 0x0A...0x0A, .write, page: 0),
        HookPoint("RBCR1 write", 0x0B...0x0B, .write, page: 0),
        HookPoint("reset-port read", 0x18...0x1F, .read),
    ]
}

/// Which accesses a mode traps: what an I/O permission bitmap (VMX or SVM) can express — port and
/// direction, never the value written — and the register page, which a VMM knows without an extra exit
/// because every page switch is a CR write, trapped in every mode that hooks any paged register (it
/// rewrites the bitmap then). So the set depends on model state only through trapped accesses.
///
/// `actsOn` is a second, narrower question: of the accesses that trap, which ones the mode's host does
/// anything with. Only `cooperative` and `on-demand` narrow it (their reduced model runs on the CR writes
/// that may start a remote DMA or a transmit); the others act on every exit. It is reported beside the
/// exits, never as them. `on-demand`'s set is this one while armed and empty otherwise (`OnDemandArming`).
public struct HookSet: Sendable {
    public let mode: Mode
    /// Indexed by direction (bit 7), page (bits 6–5) and offset (bits 4–0).
    private var bitmap: [Bool]

    public init(mode: Mode) {
        switch mode {
        case .emulated: self.init(mode: mode, bitmap: Array(repeating: true, count: 256))
        case .vmmModel: self.init(vmmModelPoints: HookPoint.vmmModel)
        case .cooperative, .onDemand: self.init(mode: mode, bitmap: Self.bitmap(for: [HookPoint("CR write", 0...0, .write)]))
        case .passthrough: self.init(mode: mode, bitmap: Array(repeating: false, count: 256))
        }
    }

    /// A vmm-model set from an explicit hook list (the removal test passes the list minus one point).
    public init(vmmModelPoints points: [HookPoint]) {
        self.init(mode: .vmmModel, bitmap: Self.bitmap(for: points))
    }

    private init(mode: Mode, bitmap: [Bool]) {
        self.mode = mode
        self.bitmap = bitmap
    }

    private static func bitmap(for points: [HookPoint]) -> [Bool] {
        var bitmap = Array(repeating: false, count: 256)
        for point in points {
            for page in point.page.map({ [$0] }) ?? [0, 1, 2, 3] {
                for offset in point.offsets { bitmap[index(point.direction, page, offset)] = true }
            }
        }
        return bitmap
    }

    @inline(__always)
    private static func index(_ direction: AccessDirection, _ page: UInt8, _ offset: UInt8) -> Int {
        Int(direction.rawValue) << 7 | Int(page & 3) << 5 | Int(offset & 0x1F)
    }

    /// Whether the access exits, with the register page the monitor's own model holds: an I/O bitmap
    /// traps an access when any port it covers is trapped (an `inl` at 0x16 covers the reset port at 0x18).
    @inline(__always)
    public func traps(_ access: PortAccess, page: UInt8) -> Bool {
        let ports = access.ports
        var port = ports.lowerBound
        while port < ports.upperBound {
            if bitmap[Self.index(access.direction, page, UInt8(port))] { return true }
            port += 1
        }
        return false
    }

    /// Whether the host acts on an access that trapped: for cooperative and on-demand, a CR write whose
    /// value may start a DMA (`ReducedModel.mayStartDMA`); every trapped access otherwise.
    @inline(__always)
    public func actsOn(_ access: PortAccess) -> Bool {
        guard mode == .cooperative || mode == .onDemand else { return true }
        return access.direction == .write && access.port == .register(CR.offset)
            && ReducedModel.mayStartDMA(command: UInt8(truncatingIfNeeded: access.value))
    }
}

/// What a shared device's host knows of an access besides the access itself (all false for a guest that
/// has the device to itself).
public struct AccessCircumstances: Sendable, Hashable {
    /// The access waited for the device: its guest did not own it. A non-owner's I/O bitmap traps every
    /// port (the VMM suspends the vCPU there until the switch), so it is an exit in every mode.
    public var held: Bool
    /// Another guest waits and the owner's turn is over: the host wants the owner's next switch point.
    public var switchWanted: Bool
    /// The host answers this access itself (a shared device's PROM read, from the guest's own PROM image):
    /// it must trap in every mode.
    public var hostAnswers: Bool
    /// The host answers the guest's PROM reads and the guest has not read its PROM since its reset: the
    /// CR write that starts that read must trap.
    public var probePending: Bool

    public init(held: Bool = false, switchWanted: Bool = false, hostAnswers: Bool = false, probePending: Bool = false) {
        self.held = held
        self.switchWanted = switchWanted
        self.hostAnswers = hostAnswers
        self.probePending = probePending
    }

    /// A guest alone on its device.
    public static let alone = AccessCircumstances()
}

/// When the on-demand mode's CR trap exists, and what switching it on and off costs. Armed while the
/// host needs it: always when the guest's grant leaves part of buffer memory to others (every DMA start
/// must then be judged, as in cooperative), while the host wants the owner's next switch point, and on a
/// shared device from the guest's reset until it has read its PROM (which the host answers).
/// Disarmed, nothing traps: the guest owns all of buffer memory, and an NE2000 DMA reaches nothing else.
///
/// Costs, counted: arming a vCPU that is running (for a switch another guest waits for) needs it out of
/// guest mode to rewrite its bitmap (a kick: one exit); arming at a reset or inside a held access, and
/// disarming (inside the switch-point exit, or a held access on its way back in), cost none.
public struct OnDemandArming: Sendable, Hashable {
    /// The grant leaves part of buffer memory to other guests.
    public let grantSplit: Bool
    public private(set) var armed: Bool
    /// Times the trap was armed, and how many of those took a kick (an exit of their own).
    public private(set) var arms = 0
    public private(set) var kicks = 0
    public private(set) var disarms = 0

    public init(grant: BufferGrant) {
        grantSplit = grant.leavesSRAMToOthers
        armed = grantSplit
    }

    /// Before an access is judged: arms or disarms for what the host needs now. Returns whether arming
    /// took a kick.
    public mutating func update(_ circumstances: AccessCircumstances) -> Bool {
        let wanted = grantSplit || circumstances.switchWanted || circumstances.probePending
        guard wanted != armed else { return false }
        armed = wanted
        guard wanted else {
            disarms += 1
            return false
        }
        arms += 1
        // A held access has already exited: the bitmap is rewritten in that exit. A probe pending follows
        // a reset, which the VMM handles before the guest runs on: no kick either.
        guard circumstances.switchWanted, !circumstances.held, !circumstances.probePending else { return false }
        kicks += 1
        return true
    }
}
